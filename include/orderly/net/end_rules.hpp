#pragma once
// end_rules: how an ending is judged, in one place for every layer and transport. The blocking
// stream_socket, the event layer's connection (on epoll and on io_uring) and TLS all collect the
// same facts about a connection and ask these two functions for its outcome, so a rule fixed here
// is fixed everywhere.
//
// The rules:
// - `clean` only when both FINs went, the peer acknowledged every byte (send queue empty), nothing
//   unread was discarded and no error is pending. A plain close() right after the FIN exchange,
//   with bytes still unacknowledged, is `closed`: the kernel keeps sending, delivery is unknown.
// - An RST that our own kernel sent is never the peer's: after we shut down reading and sent FIN,
//   Linux answers the peer's late bytes with RST and reports ECONNRESET to us as if the peer had
//   reset; that is `unread_data_discarded` with errc::reset_after_shut_read.
// - Output of ours dropped at release (never given to the kernel) is `unsent_data_discarded`: the
//   peer would otherwise read a cut stream ending in an orderly-looking FIN, so the caller resets.
// - An error the kernel has queued (SO_ERROR) explains a later ENOTCONN: a reset that arrived
//   before the call is reported as the reset, not as "not connected".

#include <cstdint>
#include <system_error>

#include "orderly/net/close_report.hpp"

namespace orderly {

// What one side knows about a connection when an error ends it or it is released.
struct end_facts {
    bool fin_sent = false;      // we shut down writing
    bool peer_eof = false;      // the peer's FIN was read (or, for TLS, its close_notify and FIN)
    bool read_shut = false;     // we shut down reading (blocking layer's shutdown(shut::read))
    bool queues_known = false;  // unread/unacked below were read from the kernel
    std::uint32_t unread = 0;   // SIOCINQ
    // SIOCOUTQ of a TCP socket. 0 for a Unix socket: its bytes are in the peer's receive queue
    // as soon as they are sent (its SIOCOUTQ counts memory not yet freed by the reader).
    std::uint32_t unacked = 0;
    int pending_error = 0;  // SO_ERROR taken at the end (0: none)
    // Output the application wrote that never reached the kernel (the event layer's buffer),
    // dropped by this release.
    std::uint64_t unsent = 0;
};

struct end_verdict {
    close_outcome outcome = close_outcome::closed;
    std::error_code error;  // errno codes in the system category, or orderly::errc
};

// `err`: the errno a recv/send/shutdown returned (ENOTCONN is explained by f.pending_error).
[[nodiscard]] end_verdict judge_error(int err, const end_facts& f) noexcept;
// A release without an error seen by the caller (close(), or the end of a graceful close):
// a pending error, unread bytes, unacknowledged bytes and missing FINs all count.
[[nodiscard]] end_verdict judge_release(const end_facts& f) noexcept;
// ECONNRESET or EPIPE (Linux says EPIPE for a write after the peer's RST was processed).
[[nodiscard]] constexpr bool is_reset_errno(int err) noexcept {
    return err == 104 /* ECONNRESET */ || err == 32 /* EPIPE */;
}

}  // namespace orderly
