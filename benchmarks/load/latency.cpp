// W1 latency: one connection, ping-pong, every round trip timed after a warm-up; p50, p99,
// p99.9, max and mean. The per-message overhead of the server's loop with nothing to amortise it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "echo_client.hpp"
#include "output.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "workloads.hpp"

namespace load {

void run_latency(const options& o, double hard_deadline) {
    // Before any connection exists, so that it does not disturb the warmed-up exchange.
    put_cpu_speed();
    std::vector<std::int64_t> samples;
    samples.reserve(1 << 20);
    auto ec = echo_client::make(o, true);
    if (!ec) return;
    // Timed from the start so that every sample has a real send time; the warm-up's are dropped.
    ec->samples = &samples;
    if (!open_all(*ec, 1, hard_deadline)) return put_echo_counters(*ec);
    double warm_end = now_s() + o.warmup;
    while (now_s() < warm_end && ec->open_now > 0)
        ec->poll_once(ms_until(warm_end));
    samples.clear();
    cpu_meter cpu(o.server_pid);
    cpu.start();
    double t0 = now_s();
    double end = t0 + o.seconds;
    while (now_s() < end && ec->open_now > 0)
        ec->poll_once(ms_until(end));
    double elapsed = now_s() - t0;
    cpu.stop();
    cpu.put(elapsed);
    cpu.put_per_cpu(elapsed, static_cast<double>(samples.size()));
    put_echo_counters(*ec);
    echo_errors(*ec);
    out().num("elapsed_s", elapsed);
    out().integer("round_trips", static_cast<std::uint64_t>(samples.size()));
    if (samples.empty()) {
        set_error("no round trip completed");
        return;
    }
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        auto i = static_cast<std::size_t>(std::lround(p * static_cast<double>(samples.size() - 1)));
        return static_cast<double>(samples[i]) / 1000.0;
    };
    double sum = 0;
    for (auto s : samples)
        sum += static_cast<double>(s);
    out().num("p50_us", pct(0.50));
    out().num("p99_us", pct(0.99));
    out().num("p999_us", pct(0.999));
    out().num("max_us", static_cast<double>(samples.back()) / 1000.0);
    out().num("mean_us", sum / static_cast<double>(samples.size()) / 1000.0);
}

}  // namespace load
