// W6 stop: SIGTERM the server in the middle of N ping-pongs and see how the connections end:
// the time from SIGTERM to the server's exit (a pidfd), EOF / reset / still open 10 s later
// (hung), and lost bytes (docs/benchmarks.md, "Lost bytes").
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

#include "echo_client.hpp"
#include "output.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "workloads.hpp"

namespace load {

void run_stop(const options& o, double hard_deadline) {
    if (o.server_pid <= 0) return set_error("stop needs --server-pid");
    auto ec = echo_client::make(o, true);
    if (!ec) return;
    ec->close_on_eof = true;
    if (!open_all(*ec, o.connections, hard_deadline)) return put_echo_counters(*ec);
    double pre_end = now_s() + o.seconds;
    while (now_s() < pre_end && ec->open_now > 0)
        ec->poll_once(ms_until(pre_end));
    std::size_t early_ends = ec->eofs + ec->resets + ec->other_errors;
    int pidfd = open_pidfd(o.server_pid);
    if (pidfd >= 0) ec->watch_pidfd(pidfd);
    auto before = read_tcp_counters();
    std::uint64_t messages_before = ec->messages;
    double t_term = now_s();
    if (kill(o.server_pid, SIGTERM) != 0) {
        set_error(fmt::format("kill(SIGTERM): {}", errstr(errno)));
    }
    std::optional<double> exit_after;
    double give_up = std::min(t_term + o.hang_after, hard_deadline);
    while (now_s() < give_up && (ec->open_now > 0 || !exit_after)) {
        bool fired = ec->poll_once(ms_until(give_up, 20));
        if (!exit_after && (fired || (pidfd < 0 && process_gone(o.server_pid)))) {
            exit_after = now_s() - t_term;
            if (pidfd >= 0) {
                close(pidfd);  // leaves the epoll set; a readable pidfd would spin the loop
                pidfd = -1;
            }
        }
    }
    if (pidfd >= 0) close(pidfd);
    auto after = read_tcp_counters();
    // Lost bytes, per connection that ended (EOF or reset): the connection lost bytes if what it
    // received is not a whole number of messages, or if it received less than it sent minus one
    // message (the one in flight when the server stopped reading may be discarded by its drain).
    // Such a connection counts sent - received as lost.
    const std::uint64_t msg = o.size;
    std::uint64_t lost_bytes = 0, lost_connections = 0, sent = 0, received = 0;
    std::size_t hung = 0, ended_eof = 0, ended_reset = 0, ended_other = 0;
    for (const auto& c : ec->conns()) {
        sent += c.sent;
        received += c.received;
        if (c.end == cend::open) {
            ++hung;
            continue;
        }
        if (c.end == cend::eof) ++ended_eof;
        if (c.end == cend::reset) ++ended_reset;
        if (c.end == cend::failed) ++ended_other;
        bool whole = c.received % msg == 0;
        bool enough = c.received + msg >= c.sent;
        if (!whole || !enough) {
            ++lost_connections;
            lost_bytes += c.sent - std::min(c.sent, c.received);
        }
    }
    put_echo_counters(*ec);
    out().num("server_exit_s", exit_after);
    out().boolean("server_exited", exit_after.has_value());
    out().integer("messages_before_sigterm", messages_before);
    out().integer("ended_before_sigterm", static_cast<std::uint64_t>(early_ends));
    out().integer("ended_eof", static_cast<std::uint64_t>(ended_eof));
    out().integer("ended_reset", static_cast<std::uint64_t>(ended_reset));
    out().integer("ended_other", static_cast<std::uint64_t>(ended_other));
    out().integer("hung", static_cast<std::uint64_t>(hung));
    out().integer("lost_connections", lost_connections);
    out().integer("lost_bytes", lost_bytes);
    out().integer("bytes_sent", sent);
    out().integer("bytes_received", received);
    out().str("lost_definition",
              "per ended connection: lost if received is not a whole number of messages or "
              "received < sent - one message; such a connection counts sent - received");
    put_tcp_deltas(before, after);
    if (early_ends) set_error(fmt::format("{} connections ended before SIGTERM", early_ends));
    if (ec->corrupt) set_error(fmt::format("{} corrupt echoes", ec->corrupt));
}

}  // namespace load
