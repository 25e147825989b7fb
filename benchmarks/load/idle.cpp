// W5 idle: what N idle connections cost the server in resident memory. Each connection does one
// 64 B exchange (so the server has set up its per-connection state) and then idles; the server's
// VmRSS is read before and 1 s after.
#include <cstdint>
#include <optional>

#include "echo_client.hpp"
#include "output.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "workloads.hpp"

namespace load {

void run_idle(const options& o, double hard_deadline) {
    if (o.server_pid <= 0) return set_error("idle needs --server-pid");
    auto before = proc_rss_kib(o.server_pid);
    auto ec = echo_client::make(o, true);
    if (!ec) return;
    ec->keep_pinging = false;
    bool opened = open_all(*ec, o.connections, hard_deadline);
    if (opened) {
        // Let the server settle (lazy frees, deferred work) before reading its RSS; keep polling so
        // a server that closes idle connections is noticed.
        double end = now_s() + o.seconds;
        while (now_s() < end)
            ec->poll_once(ms_until(end));
    }
    auto after = proc_rss_kib(o.server_pid);
    put_echo_counters(*ec);
    echo_errors(*ec);
    out().integer("connections_idle", static_cast<std::uint64_t>(ec->open_now));
    out().num("rss_before_kib",
              before ? std::optional<double>(static_cast<double>(*before)) : std::nullopt);
    out().num("rss_after_kib",
              after ? std::optional<double>(static_cast<double>(*after)) : std::nullopt);
    if (before && after && o.connections > 0) {
        out().num("bytes_per_connection", static_cast<double>(*after - *before) * 1024.0 /
                                              static_cast<double>(o.connections));
    } else {
        out().raw("bytes_per_connection", "null");
        set_error("could not read the server's VmRSS");
    }
}

}  // namespace load
