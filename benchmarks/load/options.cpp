#include "options.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace load {

namespace {

[[noreturn]] void usage(std::string_view why) {
    fmt::print(stderr,
               "orderly_load: {}\n"
               "usage: orderly_load --target 127.0.0.1:PORT --workload "
               "latency|pingpong|bulk|churn|idle|stop\n"
               "       [--client epoll|uring] [--connections N] [--size BYTES] [--seconds S]\n"
               "       [--warmup S] [--server-pid PID] [--count N] [--hang-after S] "
               "[--sources N]\n"
               "       [--tls]  (latency, pingpong, bulk, churn over TLS 1.3; the server's\n"
               "                 certificate is not verified)\n",
               why);
    std::exit(2);  // NOLINT(concurrency-mt-unsafe): before anything else runs
}

}  // namespace

const char* to_string(client_kind k) {
    return k == client_kind::uring ? "uring" : "epoll";
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
            return argv[++i];
        };
        auto number = [&]() -> double {
            std::string v(value());
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(d >= 0)) {
                usage(fmt::format("bad number '{}' for {}", v, a));
            }
            return d;
        };
        if (a == "--target") {
            o.target = value();
        } else if (a == "--workload") {
            o.workload = value();
        } else if (a == "--client") {
            std::string_view v = value();
            if (v == "epoll") {
                o.client = client_kind::epoll;
            } else if (v == "uring") {
                o.client = client_kind::uring;
            } else {
                usage(fmt::format("--client is epoll or uring, not '{}'", v));
            }
        } else if (a == "--connections") {
            o.connections = static_cast<std::size_t>(number());
        } else if (a == "--size") {
            o.size = static_cast<std::size_t>(number());
        } else if (a == "--seconds") {
            o.seconds = number();
        } else if (a == "--warmup") {
            o.warmup = number();
        } else if (a == "--hang-after") {
            o.hang_after = number();
        } else if (a == "--server-pid") {
            o.server_pid = static_cast<pid_t>(number());
        } else if (a == "--count") {
            o.count = static_cast<std::uint64_t>(number());
        } else if (a == "--sources") {
            o.sources = std::clamp<std::size_t>(static_cast<std::size_t>(number()), 1, 250);
        } else if (a == "--tls") {
            o.tls = true;
        } else if (a == "-h" || a == "--help") {
            usage("help");
        } else {
            usage(fmt::format("unknown argument '{}'", a));
        }
    }
    if (o.target.empty() || o.workload.empty()) usage("--target and --workload are required");
    auto colon = o.target.rfind(':');
    if (colon == std::string::npos) usage("--target must be IPv4:PORT");
    std::string host = o.target.substr(0, colon);
    int port = std::atoi(o.target.c_str() + colon + 1);
    o.addr.sin_family = AF_INET;
    o.addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host.c_str(), &o.addr.sin_addr) != 1) {
        usage(fmt::format("bad --target '{}'", o.target));
    }
    struct defaults {
        std::string_view name;
        std::size_t connections;
        std::size_t size;
        double seconds;
        bool uring;  // the workload runs on the echo client, which has both backends
    };
    static constexpr defaults table[] = {
        {"latency", 1, 64, 5, true},  {"pingpong", 100, 64, 5, true}, {"bulk", 1, 16384, 5, false},
        {"churn", 16, 100, 5, false}, {"idle", 1000, 64, 1, true},    {"stop", 100, 64, 1, true},
    };
    const defaults* d = nullptr;
    for (const auto& t : table) {
        if (t.name == o.workload) d = &t;
    }
    if (!d) usage(fmt::format("unknown workload '{}'", o.workload));
    if (o.client == client_kind::uring && !d->uring) {
        usage(
            fmt::format("--client uring drives the echo client (latency, pingpong, idle, stop); "
                        "{} has its own epoll loop: leave --client out",
                        o.workload));
    }
    if (o.tls && (o.workload == "idle" || o.workload == "stop")) {
        usage(fmt::format("--tls runs latency, pingpong, bulk and churn, not {}", o.workload));
    }
    if (o.tls && o.client == client_kind::uring) {
        usage("--tls has its own client (OpenSSL on epoll): leave --client out");
    }
    if (o.connections == 0) o.connections = d->connections;
    if (o.size == 0) o.size = d->size;
    if (o.seconds < 0) o.seconds = d->seconds;
    if (o.workload == "latency" || o.workload == "bulk") o.connections = 1;
    if (o.size > (1u << 20)) usage("--size is at most 1 MiB");
    return o;
}

}  // namespace load
