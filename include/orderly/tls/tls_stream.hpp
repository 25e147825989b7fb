#pragma once
// tls_stream: TLS over a connected stream_socket, with the same shapes and contracts (deadlines,
// result<T>, transfer_result, close reports) and the TLS end done in order: close_notify both
// ways, then FIN both ways. OpenSSL runs over memory BIOs; every byte goes through the
// stream_socket, so the report's TCP part comes from its own close machinery. See docs/tls.md.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "orderly/core/deadline.hpp"
#include "orderly/core/result.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/stream_socket.hpp"
#include "orderly/tls/tls_context.hpp"

struct ssl_st;  // OpenSSL's SSL
struct bio_st;  // OpenSSL's BIO

namespace orderly {

struct tls_close_options : close_options {
    // true (default): after our close_notify, wait (up to `timeout`) for the peer's; a FIN
    // without it is tls_truncated. false: a FIN without it ends the close as `closed` (never
    // `clean`), and the report says close_notify_wait::not_waited. For peers that never answer
    // close_notify (many TLS 1.3 clients do not).
    bool wait_for_peer_close_notify = true;
};

class tls_stream {
  public:
    // Wraps a connected socket; handshake() does the rest. `server_name` is sent as SNI and
    // verified against the certificate (an IP literal is checked as an IP SAN and not sent as
    // SNI). Errors: errc::tls_config_error (a server context on the client side...), not_open.
    static result<tls_stream, error_info> client(stream_socket sock, const tls_context& ctx,
                                                 const std::string& server_name);
    static result<tls_stream, error_info> server(stream_socket sock, const tls_context& ctx);

    tls_stream(tls_stream&&) noexcept = default;
    tls_stream& operator=(tls_stream&&) noexcept = default;
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;
    // close() when still open: a best-effort close_notify that never blocks.
    ~tls_stream();

    // Errors: errc::tls_verify_failed ("certificate verify failed: <reason>"),
    // errc::tls_handshake_failed (OpenSSL's reason, or the peer's close during the handshake),
    // errc::timed_out, errc::peer_reset.
    result<void, error_info> handshake(deadline until = deadline::never());

    // Encrypts and sends at least one byte (at most one 16 KiB record). A count is returned only
    // once the record is in the kernel; an error while a record was half written leaves the
    // write side failed (a TLS record cannot be taken back). Errors as stream_socket::send plus
    // errc::tls_not_established, errc::tls_protocol_error.
    result<std::size_t> send(std::span<const std::byte> data, deadline until = deadline::never());
    result<std::size_t> send(std::string_view data, deadline until = deadline::never());
    // All of `data` or the first error; `bytes` is exact (plaintext bytes whose records went out).
    transfer_result send_all(std::span<const std::byte> data, deadline until = deadline::never());
    transfer_result send_all(std::string_view data, deadline until = deadline::never());

    // Decrypts up to buf.size() bytes. 0 = the peer's close_notify (TLS EOF). A TCP EOF without
    // close_notify is errc::tls_truncated, unless allow_unclean_eof(true) (then 0).
    // Errors: errc::tls_truncated, errc::tls_protocol_error, errc::timed_out, errc::peer_reset.
    result<std::size_t> recv(std::span<std::byte> buf, deadline until = deadline::never());
    result<std::size_t> recv(std::span<char> buf, deadline until = deadline::never());
    transfer_result read_to_end(std::string& out, deadline until = deadline::never(),
                                std::size_t limit = SIZE_MAX);

    // shut::write: close_notify, then TCP SHUT_WR; reading still works (TLS 1.3 half-close; a
    // TLS 1.2 peer may answer with its own close_notify at once). shut::read: later recv() says 0.
    result<void> shutdown(shut how);

    // Never block: close() tries to send close_notify without waiting, then closes the socket.
    close_report close() noexcept;
    close_report abort() noexcept;
    // close_notify, SHUT_WR, read and discard until the peer's close_notify and FIN (bounded by
    // opts.timeout and opts.drain_limit, both in total; the cap counts TCP bytes, as the
    // report's bytes_drained does), then the socket's own close_gracefully. `clean` only
    // with close_notify both ways and both FINs. Never throws.
    close_report close_gracefully(const tls_close_options& opts = {}) noexcept;

    void allow_unclean_eof(bool allow) noexcept { allow_unclean_eof_ = allow; }
    [[nodiscard]] bool established() const noexcept { return established_; }
    [[nodiscard]] bool close_notify_received() const noexcept { return peer_notify_; }
    [[nodiscard]] bool close_notify_sent() const noexcept { return our_notify_; }
    [[nodiscard]] std::string version() const;  // "TLSv1.3"; empty before the handshake
    [[nodiscard]] std::string cipher() const;
    [[nodiscard]] std::string alpn() const;  // negotiated protocol; empty when none
    // OpenSSL's reason for the last TLS error (empty when there was none).
    [[nodiscard]] const std::string& last_error_detail() const noexcept { return detail_; }
    [[nodiscard]] const stream_socket& socket() const noexcept { return sock_; }

  private:
    struct ssl_free {
        void operator()(ssl_st* s) const noexcept;
    };
    tls_stream(stream_socket sock, ssl_st* ssl, bio_st* rbio, bio_st* wbio) noexcept;
    static result<tls_stream, error_info> make(stream_socket sock, const tls_context& ctx,
                                               bool client);
    // Runs an SSL call until it succeeds or needs what cannot come: returns its result (> 0),
    // 0 on close_notify, -1 on an error (in `ec`, detail_ set).
    template <class Op>
    int drive(Op op, deadline until, std::error_code& ec);
    int read_some(void* buf, int len, deadline until, std::error_code& ec);  // drive(SSL_read)
    std::error_code flush(deadline until) noexcept;                          // wbio -> socket
    std::error_code fill(deadline until) noexcept;                           // socket -> rbio
    std::error_code classify_failure(int ssl_error) noexcept;
    void fill_report(close_report& r) const;
    bool queue_close_notify(deadline until) noexcept;

    stream_socket sock_;
    std::unique_ptr<ssl_st, ssl_free> ssl_;
    bio_st* rbio_ = nullptr;  // owned by ssl_
    bio_st* wbio_ = nullptr;
    std::string detail_;
    std::error_code tls_error_;  // sticky: the TLS state is dead (truncation, fatal alert, ...)
    std::error_code write_error_;
    close_notify_wait wait_ = close_notify_wait::none;
    bool established_ = false;
    bool tcp_eof_ = false;
    bool peer_notify_ = false;
    bool our_notify_ = false;
    bool read_shut_ = false;
    bool allow_unclean_eof_ = false;
};

}  // namespace orderly
