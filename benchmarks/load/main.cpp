// orderly_load: the load generator behind benchmarks/run.py. One thread, non-blocking sockets,
// raw syscalls or io_uring (--client). It deliberately does not use the orderly library: it
// measures it (and the other peers), so it must not share its code paths or its bugs.
//
// Prints exactly one JSON object on stdout; diagnostics go to stderr. Exit status 0 when the
// workload ran to the end without an error, 1 otherwise (the JSON then has "error"), 2 for bad
// arguments, 3 when the watchdog fired.
//
// Files: one per workload (latency.cpp W1, pingpong.cpp W2, bulk.cpp W3, churn.cpp W4, idle.cpp
// W5, stop.cpp W6); the echo client W1, W2, W5 and W6 share (echo_client.*, with its epoll and
// io_uring backends); options, output, sys (clocks, /proc, sockets) and the byte pattern.
// --tls: tls_echo.cpp (W1-W3) and tls_churn.cpp (W4) on OpenSSL, tls_client.* shared.
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "options.hpp"
#include "output.hpp"
#include "sys.hpp"
#include "tls_client.hpp"
#include "workloads.hpp"

int main(int argc, char** argv) {
    using namespace load;
    options o = parse(argc, argv);
    (void)signal(SIGPIPE, SIG_IGN);  // belt and braces: every send already uses MSG_NOSIGNAL

    // Thousands of connections need thousands of descriptors.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);

    out().str("workload", o.workload);
    out().str("target", o.target);
    out().str("client", to_string(o.client));
    out().integer("connections", static_cast<std::uint64_t>(o.connections));
    out().integer("size", static_cast<std::uint64_t>(o.size));
    out().num("seconds", o.seconds);
    if (o.connections + 16 > rl.rlim_cur) {
        set_error(fmt::format("RLIMIT_NOFILE is {}, too low for {} connections",
                              static_cast<std::uint64_t>(rl.rlim_cur), o.connections));
    }

    // Hard cap: the workload's own time, plus 15 s, plus time to set up many connections.
    double extra = o.workload == "stop" ? o.hang_after : 0.0;
    double cap = o.seconds + o.warmup + extra + 15.0 + static_cast<double>(o.connections) / 1000.0;
    double hard_deadline = now_s() + cap;
    arm_watchdog(o.workload, cap + 5);

    double t_start = now_s();
    if (!has_error() && o.tls) {
        if (o.workload == "churn") {
            run_tls_churn(o, hard_deadline);
        } else {
            run_tls_echo(o, hard_deadline);
        }
    } else if (!has_error()) {
        if (o.workload == "latency") run_latency(o, hard_deadline);
        if (o.workload == "pingpong") run_pingpong(o, hard_deadline);
        if (o.workload == "bulk") run_bulk(o, hard_deadline);
        if (o.workload == "churn") run_churn(o, hard_deadline);
        if (o.workload == "idle") run_idle(o, hard_deadline);
        if (o.workload == "stop") run_stop(o, hard_deadline);
    }
    disarm_watchdog();
    out().num("wall_s", now_s() - t_start);
    out().boolean("ok", !has_error());
    if (has_error()) out().str("error", first_error());
    std::string text = out().dump();
    (void)std::fwrite(text.data(), 1, text.size(), stdout);
    (void)std::fflush(stdout);
    return has_error() ? 1 : 0;
}
