// W2 pingpong: N connections, one message outstanding each, for the measured interval after a
// warm-up. Messages per second; the server's CPU time per message (how much work each message
// costs it, whether or not its core was saturated) and the client's plus the server's (on
// loopback the sender's core also does the receiver's network processing, so the two are
// entangled and only their sum is free of where the kernel put that work).

#include <cstdint>
#include <optional>

#include "echo_client.hpp"
#include "output.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "workloads.hpp"

namespace load {

void run_pingpong(const options& o, double hard_deadline) {
    // Before any connection exists, so that it does not disturb the warmed-up exchange.
    put_cpu_speed();
    auto ec = echo_client::make(o, false);  // no content check: the client must stay cheap
    if (!ec) return;
    if (!open_all(*ec, o.connections, hard_deadline)) return put_echo_counters(*ec);
    double warm_end = now_s() + o.warmup;
    while (now_s() < warm_end && ec->open_now > 0)
        ec->poll_once(ms_until(warm_end));
    cpu_meter cpu(o.server_pid);
    cpu.start();
    std::uint64_t m0 = ec->messages;
    double t0 = now_s();
    double end = t0 + o.seconds;
    while (now_s() < end && ec->open_now > 0)
        ec->poll_once(ms_until(end));
    double t1 = now_s();
    std::uint64_t m1 = ec->messages;
    cpu.stop();
    put_echo_counters(*ec);
    echo_errors(*ec);
    double dt = t1 - t0;
    auto msgs = static_cast<double>(m1 - m0);
    out().num("elapsed_s", dt);
    out().integer("messages", m1 - m0);
    out().num("msgs_per_s", msgs / dt);
    out().num("mb_per_s", msgs * static_cast<double>(o.size) / dt / 1e6);
    cpu.put(dt);
    cpu.put_per_cpu(dt, msgs);
    auto per_msg = [&](std::optional<double> s) -> std::optional<double> {
        if (!s || msgs <= 0) return std::nullopt;
        return *s / msgs * 1e6;
    };
    auto srv = cpu.server_s();
    out().num("server_cpu_us_per_msg", per_msg(srv));
    out().num("client_cpu_us_per_msg", per_msg(cpu.client_s()));
    out().num("client_server_cpu_us_per_msg",
              per_msg(srv ? std::optional<double>(*srv + cpu.client_s()) : std::nullopt));
    if (m1 == m0) set_error("no message completed in the measured interval");
}

}  // namespace load
