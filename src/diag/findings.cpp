#include "orderly/diag/findings.hpp"

#include <algorithm>
#include <map>

#include "findings_util.hpp"
#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag {
namespace {

using detail::collector;
using detail::count_text;
using detail::duration_text;
using detail::where;
using std::chrono::milliseconds;

bool old_enough(std::optional<milliseconds> quiet, milliseconds min_age) {
    return !quiet || *quiet >= min_age;
}

// The peer has finished sending and we hold the descriptor.
bool peer_finished(const socket_info& s) {
    if (s.fd < 0) return false;
    if (s.kernel.is_unix()) {
        return s.kernel.state == tcp_state::established &&
               (s.kernel.unix_peer_gone || s.kernel.shut(shutdown_read));
    }
    return peer_fin_received(s.kernel);
}

std::string queue_text(const kernel_socket& k) {
    std::string out = std::to_string(unread_bytes(k)) + " B unread";
    if (!k.is_unix()) {
        out += end_of_stream_read(k) ? " (the program has read the end of stream)"
                                     : " (the program has not read the end of stream)";
    }
    return out + ", " + std::to_string(k.send_queue) + " B unsent or unacknowledged";
}

void find_close_wait(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::close_wait);
    for (const auto& s : p.connections) {
        const auto& k = s.kernel;
        const bool leak = k.is_unix()
                              ? peer_finished(s) && (k.unix_peer_gone || !k.shut(shutdown_write))
                              : k.state == tcp_state::close_wait && s.fd >= 0;
        if (!leak || !old_enough(s.quiet_for, min_age)) continue;
        std::string line = where(s) + ": ";
        if (k.tcp) {
            // In CLOSE_WAIT the peer's FIN is in tcpi_bytes_received too (it takes one sequence
            // number): one byte in all is a peer that sent nothing but its FIN.
            const bool fin_only = k.tcp->bytes_received <= 1;
            line +=
                "nothing from the peer for " +
                duration_text(milliseconds(k.tcp->last_ack_recv_ms)) +
                " (its FIN arrived at least that long ago), " +
                (fin_only ? std::string("no data from it before its FIN")
                          : "last data from it " +
                                duration_text(milliseconds(k.tcp->last_data_recv_ms)) + " ago") +
                ", nothing sent for " + duration_text(milliseconds(k.tcp->last_data_sent_ms));
        } else {
            line += k.unix_peer_gone
                        ? "the peer has closed its end"
                        : "the peer shut down writing (or this program shut down reading)";
        }
        line += "; " + queue_text(k);
        c.add(s, std::move(line), s.quiet_for);
    }
    const std::size_t n = c.count();
    c.finish(out,
             count_text(n, "connection", "connections") +
                 " in CLOSE_WAIT: the peer has finished, and this program has neither closed " +
                 (n == 1 ? "it" : "them") + " nor shut down writing",
             "After reading end-of-stream (recv() returned 0), send what is still owed and then "
             "close() the socket, or shutdown(SHUT_WR) and close() once the peer has gone. Each "
             "CLOSE_WAIT socket holds a descriptor until the process exits; enough of them and "
             "accept() fails with EMFILE. With orderly: close_gracefully(), or "
             "shutdown_write() in on_peer_eof.");
}

void find_unread(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::unread_after_peer_eof);
    for (const auto& s : p.connections) {
        if (!peer_finished(s) || unread_bytes(s.kernel) == 0 || !old_enough(s.quiet_for, min_age))
            continue;
        c.add(s,
              where(s) + ": " + std::to_string(unread_bytes(s.kernel)) +
                  " B unread after the peer's end of stream (" +
                  std::string(to_string(s.kernel.state)) + ")",
              s.quiet_for);
    }
    c.finish(out,
             count_text(c.count(), "connection holds", "connections hold") +
                 " unread bytes although the peer has finished: close() now resets the "
                 "connection (RST; a Unix peer reads ECONNRESET), and the peer can lose data it "
                 "has not read yet",
             "Read to end-of-stream before closing, discarding what is not needed (as "
             "close_gracefully() does), so that the close sends FIN and not RST.");
}

void find_fin_wait2(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::fin_wait2);
    for (const auto& s : p.connections) {
        if (s.kernel.is_unix() || s.kernel.state != tcp_state::fin_wait2 ||
            !old_enough(s.quiet_for, min_age))
            continue;
        std::string line = where(s) + ": our FIN was acknowledged";
        if (s.quiet_for) line += ", nothing from the peer for " + duration_text(*s.quiet_for);
        c.add(s, std::move(line), s.quiet_for);
    }
    c.finish(out,
             count_text(c.count(), "connection", "connections") +
                 " shut down for writing by this program " + (c.count() == 1 ? "waits" : "wait") +
                 " for the peer's FIN (FIN_WAIT2, ss's \"<--\")",
             "The peer has not finished; it may be leaking CLOSE_WAIT itself. Bound the wait: "
             "close_gracefully() with a deadline, or close() (or abort()) after a timeout once "
             "writing is shut down.");
}

void find_read_shut(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::read_shut);
    for (const auto& s : p.connections) {
        const auto& k = s.kernel;
        // Until the peer's FIN, a TCP socket's read side is shut only by shutdown(SHUT_RD).
        const bool before_peer_fin = k.state == tcp_state::established ||
                                     k.state == tcp_state::fin_wait1 ||
                                     k.state == tcp_state::fin_wait2;
        if (k.is_unix() || !before_peer_fin || !k.shut(shutdown_read) ||
            !old_enough(s.quiet_for, min_age))
            continue;
        c.add(s,
              where(s) + ": " + std::string(shutdown_arrow(k.shutdown)) + " in " +
                  std::string(to_string(k.state)) + ", " + std::to_string(unread_bytes(k)) +
                  " B unread",
              s.quiet_for);
    }
    c.finish(out,
             count_text(c.count(), "connection is", "connections are") +
                 " shut down for reading (shutdown(SHUT_RD), ss's \"-->\") while the peer may "
                 "still send",
             "Linux sends nothing on shutdown(SHUT_RD): the peer keeps sending, the bytes are "
             "still accepted, and the close() that follows sends RST. To say \"done\", shut down "
             "writing and read to the peer's EOF; to stop a peer at once, abort().");
}

void find_orphans(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out) {
    collector c(finding_kind::orphaned);
    std::map<std::string, std::size_t> by_state;
    for (const auto& s : p.orphans) {
        if (!old_enough(s.quiet_for, min_age)) continue;
        const auto& k = s.kernel;
        std::string line = where(s) + ": " + std::string(to_string(k.state));
        if (k.send_queue > 0)
            line += ", " + std::to_string(k.send_queue) + " B not yet acknowledged";
        if (k.state == tcp_state::fin_wait2) line += ", the peer has not sent its FIN";
        if (k.timer != tcp_timer::off) {
            line += ", the kernel gives up in " + duration_text(milliseconds(k.timer_expires_ms));
        }
        ++by_state[std::string(to_string(k.state))];
        c.add(s, std::move(line), s.quiet_for);
    }
    std::string states;
    for (const auto& [name, n] : by_state) {
        states += (states.empty() ? "" : ", ") + name + " " + std::to_string(n);
    }
    c.finish(out,
             count_text(c.count(), "socket on this program's listening ports was",
                        "sockets on this program's listening ports were") +
                 " closed before the connection ended and left to the kernel (" + states +
                 "); as no descriptor holds such a socket, another process listening on the "
                 "same port may have closed it",
             "After close() the program can no longer learn whether its last bytes arrived or "
             "whether the peer ended. Shut down writing and read to the peer's EOF before "
             "close() (close_gracefully()), so the end is known and reported. FIN_WAIT2 here "
             "means the peer does not close its end.");
}

void find_full_accept_queues(const process_snapshot& p, std::vector<finding>& out) {
    collector c(finding_kind::accept_queue_full);
    for (const auto& s : p.listeners) {
        const auto& k = s.kernel;
        if (k.send_queue == 0 || k.recv_queue < k.send_queue) continue;
        c.add(s,
              "fd " + std::to_string(s.fd) + " " + k.local.to_string() + ": " +
                  std::to_string(k.recv_queue) + " connections wait for accept(), backlog " +
                  std::to_string(k.send_queue),
              std::nullopt);
    }
    if (c.empty()) return;
    std::string counters;
    if (p.counters.listen_overflows) {
        counters = "; this network namespace has counted " +
                   std::to_string(*p.counters.listen_overflows) + " ListenOverflows and " +
                   std::to_string(p.counters.listen_drops.value_or(0)) +
                   " ListenDrops since boot (/proc/net/netstat)";
    }
    c.finish(out,
             count_text(c.count(), "listener has its", "listeners have their") +
                 " accept queue full: new connections are dropped or refused" + counters,
             "The program does not accept() fast enough, or has stopped (at its descriptor "
             "limit accept() fails with EMFILE). Accept in a loop until EAGAIN, listen() with "
             "SOMAXCONN, and check the descriptor limit.");
}

void find_descriptor_limit(const process_snapshot& p, std::vector<finding>& out) {
    const auto& d = p.descriptors;
    if (!d.limit.soft || *d.limit.soft == 0 || d.open * 10 < *d.limit.soft * 9) return;
    finding f;
    f.kind = finding_kind::descriptors_near_limit;
    f.count = d.open;
    const std::size_t close_wait =
        p.state_counts()[static_cast<std::size_t>(socket_state::half_closed_by_peer)];
    f.summary = std::to_string(d.open) + " of " + std::to_string(*d.limit.soft) +
                " descriptors in use (RLIMIT_NOFILE): the next accept(), socket() or open() "
                "fails with EMFILE";
    f.evidence.push_back("soft limit " + std::to_string(*d.limit.soft) + ", hard limit " +
                         (d.limit.hard ? std::to_string(*d.limit.hard) : "unlimited"));
    f.evidence.push_back(std::to_string(d.sockets) + " of the descriptors are sockets: " +
                         std::to_string(p.connections.size()) + " connections (" +
                         std::to_string(close_wait) + " half-closed by the peer), " +
                         std::to_string(p.listeners.size()) + " listeners, " +
                         std::to_string(d.unconnected_tcp) + " TCP not connected, " +
                         std::to_string(d.other_sockets - d.unconnected_tcp) + " other sockets");
    f.advice =
        "Find what holds them (the other findings name leaking sockets) and fix that first; if "
        "the load is real, raise the soft limit (ulimit -n, systemd's LimitNOFILE=), which any "
        "process may do up to the hard limit.";
    out.push_back(std::move(f));
}

}  // namespace

std::string_view to_string(finding_kind k) noexcept {
    switch (k) {
        case finding_kind::close_wait:
            return "close_wait";
        case finding_kind::closed_not_released:
            return "closed_not_released";
        case finding_kind::unread_after_peer_eof:
            return "unread_after_peer_eof";
        case finding_kind::send_queue_stuck:
            return "send_queue_stuck";
        case finding_kind::fin_wait2:
            return "fin_wait2";
        case finding_kind::read_shut:
            return "read_shut";
        case finding_kind::orphaned:
            return "orphaned";
        case finding_kind::accept_queue_full:
            return "accept_queue_full";
        case finding_kind::descriptors_near_limit:
            return "descriptors_near_limit";
    }
    return "unknown";
}

std::vector<finding> diagnose(const process_snapshot& p, const diagnose_options& opts) {
    std::vector<finding> out;
    find_close_wait(p, opts.min_age, out);
    detail::find_closed_not_released(p, out);
    find_unread(p, opts.min_age, out);
    detail::find_stuck_sends(p, opts.min_age, out);
    find_fin_wait2(p, opts.min_age, out);
    find_read_shut(p, opts.min_age, out);
    find_orphans(p, opts.min_age, out);
    find_full_accept_queues(p, out);
    find_descriptor_limit(p, out);
    return out;
}

}  // namespace orderly::diag
