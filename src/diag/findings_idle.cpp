// The findings about sockets on which nothing moves any more: TCP sockets whose connection is
// over but whose descriptor is still held (closed_not_released), and send queues the peer does
// not take (send_queue_stuck).

#include "findings_util.hpp"

namespace orderly::diag::detail {

void find_closed_not_released(const process_snapshot& p, std::vector<finding>& out) {
    collector c(finding_kind::closed_not_released);
    for (const auto& u : p.unconnected) {
        std::string line = "fd " + std::to_string(u.fd) + ": a " +
                           (u.protocol == "TCPv6" ? "TCP over IPv6" : "TCP") +
                           " socket in state CLOSE, in no table of the kernel; ";
        line += u.held_for ? "held so for at least " + duration_text(*u.held_for) +
                                 " (seen so in the earlier looks)"
                           : "since when is unknown (the kernel keeps no time for it; --watch "
                             "shows whether it stays)";
        c.add(u.fd, u.inode, std::move(line), u.held_for);
    }
    const std::size_t n = c.count();
    c.finish(out,
             count_text(n, "TCP socket is", "TCP sockets are") +
                 " not connected (TCP state CLOSE) and still held by this program: the "
                 "connection ended (both FINs exchanged, or reset by the peer) or a connect() "
                 "failed, and the descriptor was never closed; or the socket was created and "
                 "not yet connected; one look cannot tell these apart",
             "Once a connection is over (recv() returned 0 and this side has shut down "
             "writing, or a call failed with ECONNRESET, EPIPE, ETIMEDOUT or ECONNREFUSED), "
             "close() the descriptor. Until then it counts against RLIMIT_NOFILE like a "
             "CLOSE_WAIT leak, and neither ss nor netstat shows it. A socket kept unconnected on "
             "purpose shows here too; if these are yours, ignore them.");
}

void find_stuck_sends(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::send_queue_stuck);
    for (const auto& s : p.connections) {
        const auto& k = s.kernel;
        if (k.is_unix() || !k.tcp || k.send_queue == 0 || !s.send_stalled_for) continue;
        const milliseconds stalled = *s.send_stalled_for;
        if (stalled < min_age) continue;
        const bool zero_window = k.timer == tcp_timer::zero_window_probe ||
                                 (k.tcp->peer_window && *k.tcp->peer_window == 0);
        const bool retransmitting = k.timer == tcp_timer::retransmit;
        if (!zero_window && !retransmitting) continue;
        std::string line = where(s) + ": " + std::to_string(k.send_queue) + " B queued; ";
        if (k.timer == tcp_timer::zero_window_probe) {
            line += "the peer's receive window is zero (persist timer, " +
                    std::to_string(k.tcp->probes) + " probes unanswered by a window)";
        } else if (zero_window && retransmitting) {
            line +=
                "the peer advertises a zero window and drops what comes (its buffer shrank); "
                "the retransmission timer has backed off " +
                std::to_string(static_cast<unsigned>(k.tcp->backoff)) + " times";
        } else if (zero_window) {
            line += "the peer's receive window is zero";
        } else {
            line += std::to_string(k.timer_retries) +
                    " retransmission timeouts in a row unacknowledged (the peer or the path is "
                    "gone)";
        }
        if (s.stall_seen_across_looks) {
            line += "; bytes acknowledged (" + std::to_string(k.tcp->bytes_acked) +
                    ") and the queue unchanged for at least " + duration_text(stalled) +
                    " across looks";
        } else if (retransmitting) {
            line += ": nothing acknowledged for at least " + duration_text(stalled) +
                    " (the timeouts that expired)";
        } else {
            line += "; no new data sent for " + duration_text(stalled);
        }
        c.add(s, std::move(line), stalled);
    }
    c.finish(out,
             count_text(c.count(), "connection has", "connections have") +
                 " a send queue that has not moved: the peer does not take the bytes",
             "A peer that stops reading holds this program's memory and descriptor for as long "
             "as it likes. Bound every write with a timeout (connection_options::write_timeout), "
             "cap what is buffered for one peer, and abort() peers that make no progress.");
}

}  // namespace orderly::diag::detail
