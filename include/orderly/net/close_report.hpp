#pragma once
// close_report: how a connection ended. Every way of ending a stream_socket (close, abort,
// close_gracefully, the destructor) and every event-layer connection produces one.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "orderly/net/endpoint.hpp"
#include "orderly/net/tcp_info.hpp"

namespace orderly {

enum class close_outcome : std::uint8_t {
    clean,   // both sides sent FIN, the peer acknowledged all we sent, nothing was discarded
    closed,  // plain close: released without waiting for the peer; nothing known lost
    unread_data_discarded,  // closed with unread received bytes: Linux sent RST to the peer
    unsent_data_discarded,  // closed with our output still buffered (event layer): it was
                            // dropped and the peer got RST, so the cut shows on its side too
    peer_reset,             // the peer sent RST
    timed_out,              // the deadline passed before the peer's EOF; the socket was aborted
    drain_limit,            // the peer sent more than the drain cap after our FIN; aborted
    aborted,                // abort() was asked for: SO_LINGER{1,0}, the peer got RST
    error,                  // another socket error ended the connection (see `error`)
    tls_truncated,  // TLS: the peer's FIN came without close_notify (the data may be truncated)
    tls_error,      // TLS: a handshake, record or alert error ended it (tls->detail says why)
    not_open,       // there was nothing to close (keep it last: close_outcome_count)
};

// How many outcomes there are (for tables indexed by close_outcome).
inline constexpr std::size_t close_outcome_count =
    static_cast<std::size_t>(close_outcome::not_open) + 1;

// "clean", "peer_reset", ... (the words of the vocabulary, stable for scripts).
std::string_view to_string(close_outcome o) noexcept;

// How the close was asked for.
enum class close_method : std::uint8_t { close, graceful, abort, destructor };
std::string_view to_string(close_method m) noexcept;

// TLS only: what happened to the close_notify alerts when the close ended.
enum class close_notify_wait : std::uint8_t {
    none,        // no graceful TLS close was attempted (close(), abort(), no handshake)
    received,    // the peer's close_notify arrived
    not_waited,  // wait_for_peer_close_notify = false: ended after the TCP drain without it
    peer_fin,    // the peer's FIN came first, without close_notify
    deadline,    // waited for it until the deadline
};
std::string_view to_string(close_notify_wait w) noexcept;

// The TLS end of a connection (tls_stream); the rest of close_report is the TCP end under it.
struct tls_close_info {
    bool close_notify_sent = false;
    bool close_notify_received = false;
    close_notify_wait wait = close_notify_wait::none;
    std::string version;  // "TLSv1.3", empty before the handshake
    std::string cipher;   // "TLS_AES_256_GCM_SHA384"
    std::string alpn;     // the negotiated protocol, empty when none
    std::string detail;   // for tls_error/tls_truncated: OpenSSL's reason or what was seen
};

struct close_report {
    close_outcome outcome = close_outcome::not_open;
    close_method method = close_method::close;
    std::error_code error;  // the error behind peer_reset / error / timed_out outcomes, if any

    std::uint64_t bytes_sent = 0;      // over the socket's whole life
    std::uint64_t bytes_received = 0;  // read by the application (drained bytes not included)
    std::uint64_t bytes_drained = 0;   // read and discarded after our FIN while closing

    std::uint32_t unacked_bytes = 0;  // SIOCOUTQ at release: still owed to the peer by the kernel
    std::uint32_t unread_bytes = 0;   // SIOCINQ at release: received but never read (RST cause)
    std::uint64_t unsent_bytes = 0;   // written by the application, never given to the kernel:
                                      // dropped at release (event layer; 0 for blocking sockets)

    bool fin_sent = false;  // we shut down writing (or the close did it for us)
    bool peer_eof = false;  // the peer's FIN was read

    std::optional<tcp_info_snapshot> tcp;        // last TCP_INFO before release (TCP only)
    std::chrono::nanoseconds close_duration{0};  // time spent inside the close call
    std::chrono::nanoseconds lifetime{0};        // from open/accept/connect to release

    endpoint local;
    endpoint peer;

    std::optional<tls_close_info> tls;  // set by tls_stream: the TLS end over the TCP end above

    // Did the peer get everything we sent and an orderly FIN, as far as this side can tell?
    [[nodiscard]] bool orderly() const noexcept { return outcome == close_outcome::clean; }

    // One line for humans: "clean: sent 12 B, received 5 B, drained 0 B, ... (3.2 ms)".
    [[nodiscard]] std::string to_string() const;
    // One JSON object (no trailing newline) with the same fields, for scripts.
    [[nodiscard]] std::string to_json() const;
};

}  // namespace orderly
