#pragma once
// stream_filter: a byte transformer between an event-layer connection and its socket (TLS is
// the one there is: orderly::tls's tls_filter). The connection moves ciphertext to and from the
// kernel and plaintext to and from the application; the filter only transforms and reports what
// it saw (handshake done, close_notify sent or received, a fatal error). It decides no outcome:
// the connection's end_machine does. No syscalls, no loop: any backend can drive it.
//
// A connection without a filter does not pay for this interface (one null check per read and
// write). Declared here, in the net layer, so that the TLS layer can implement it without
// depending on the event layer.

#include <cstddef>
#include <span>
#include <string>

#include "orderly/net/close_report.hpp"

namespace orderly {

class stream_filter {
  public:
    virtual ~stream_filter() = default;

    // The connection is adopted: a client queues its first flight (ClientHello).
    virtual void start() = 0;
    // Ciphertext that arrived from the peer. False on a fatal error (failure_detail() says why;
    // the alert to send, if any, is in take_ciphertext()).
    virtual bool feed(std::span<const std::byte> ciphertext) = 0;
    // The next plaintext the peer sent, empty when none is ready. Valid until the next call.
    // False-y (empty) also after a fatal error; check failed().
    virtual std::span<const std::byte> read_plaintext() = 0;
    // Plaintext from the application; held (counted by plaintext_buffered()) until the
    // handshake is done. False on a fatal error.
    virtual bool write_plaintext(std::span<const std::byte> plaintext) = 0;
    // Queue our close_notify (TLS's half-close). No-op if already sent, or before the handshake.
    virtual void send_close_notify() = 0;
    // Ciphertext to send, taken out of the filter. Valid until the next call.
    virtual std::span<const std::byte> take_ciphertext() = 0;

    [[nodiscard]] virtual bool handshake_done() const noexcept = 0;
    [[nodiscard]] virtual bool close_notify_sent() const noexcept = 0;
    [[nodiscard]] virtual bool close_notify_received() const noexcept = 0;
    [[nodiscard]] virtual bool failed() const noexcept = 0;
    [[nodiscard]] virtual std::string failure_detail() const = 0;
    // Plaintext written but not yet encrypted (waits for the handshake).
    [[nodiscard]] virtual std::size_t plaintext_buffered() const noexcept = 0;
    // The TLS part of the close report: alerts, version, cipher, ALPN. The connection sets
    // `wait` and `detail` for what it judged (truncation, deadline).
    virtual void describe(tls_close_info& out) const = 0;
};

}  // namespace orderly
