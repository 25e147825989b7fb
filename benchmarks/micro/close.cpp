// Ending a connected TCP loopback socket: a bare ::close against stream_socket::close(), which
// also builds a close_report, and the report's information gathering alone on an open socket.
// Plus the TCP_INFO read that the report is built around, raw getsockopt against read_tcp_info.

#include <benchmark/benchmark.h>
// The kernel's struct tcp_info, as src/net/tcp_info.cpp uses, so both variants copy the same size.
#include <linux/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <optional>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/socket_options.hpp"
#include "orderly/net/stream_socket.hpp"
#include "orderly/net/tcp_info.hpp"
#include "pairs.hpp"

namespace orderly::micro {
namespace {

// IPPROTO_TCP without <netinet/in.h>, which clashes with <linux/tcp.h>.
constexpr int level_tcp = 6;

// A close can only be timed once per socket, and making a TCP pair (socket, connect, accept,
// setsockopt) costs several times more than closing one. So pairs are made in batches with the
// timer paused: PauseTiming/ResumeTiming cost around a microsecond themselves (they read the
// thread CPU clock, a real syscall), which spread over a batch is noise, where pausing for every
// iteration would be as large as the thing measured. Each batch gets its own listener, hence its
// own port: the closed clients sit in TIME_WAIT, and a fresh destination port keeps their
// 4-tuples from ever colliding with the next batch's connects.
constexpr std::size_t batch_size = 128;

// The server ends and the listener of the previous batch are closed here, untimed, too.
bool refill(std::vector<fd_pair>& pairs) {
    for (fd_pair& p : pairs)
        close_pair(p);
    pairs.clear();
    const int listener = tcp_listener();
    if (listener < 0) return false;
    for (std::size_t i = 0; i < batch_size; ++i) {
        const fd_pair p = tcp_pair(listener);
        if (!p.ok()) break;
        pairs.push_back(p);
    }
    ::close(listener);
    return pairs.size() == batch_size;
}

// Runs `close_one(pair)` once per iteration on a fresh, idle, ESTABLISHED client end.
// `prepare(pairs)` runs untimed after every refill (e.g. to wrap descriptors in stream_sockets).
template <class Prepare, class CloseOne>
void run_close(benchmark::State& state, Prepare prepare, CloseOne close_one) {
    std::vector<fd_pair> pairs;
    pairs.reserve(batch_size);
    std::size_t next = batch_size;
    for (auto _ : state) {
        if (next == batch_size) {
            state.PauseTiming();
            const bool ok = refill(pairs);
            if (ok) prepare(pairs);
            state.ResumeTiming();
            if (!ok) {
                state.SkipWithError("could not make a batch of TCP pairs");
                break;
            }
            next = 0;
        }
        close_one(pairs[next]);
        ++next;
    }
    for (fd_pair& p : pairs)
        close_pair(p);
    state.SetItemsProcessed(state.iterations());
}

void close_raw(benchmark::State& state) {
    run_close(
        state, [](std::vector<fd_pair>&) {},
        [](fd_pair& p) {
            ::close(p.a);
            p.a = -1;
        });
}

// Runs `close_one(socket)` once per iteration on a Socket (stream_socket, or an optional of one)
// that owns a fresh client end; adopting (fcntl O_NONBLOCK) happens untimed.
template <class Socket, class CloseOne>
void close_adopted(benchmark::State& state, CloseOne close_one) {
    std::vector<Socket> sockets;
    sockets.reserve(batch_size);
    std::size_t next = 0;
    run_close(
        state,
        [&](std::vector<fd_pair>& pairs) {
            sockets.clear();
            for (fd_pair& p : pairs) {
                sockets.emplace_back(stream_socket(unique_fd(p.a)));
                p.a = -1;
            }
            next = 0;
        },
        [&](fd_pair&) { close_one(sockets[next++]); });
}

void close_orderly(benchmark::State& state) {
    close_adopted<stream_socket>(state, [](stream_socket& s) {
        close_report r = s.close();
        benchmark::DoNotOptimize(r);
    });
}

// The destructor (destroy_policy::close): nobody can read its report, so it only releases.
void close_orderly_destructor(benchmark::State& state) {
    close_adopted<std::optional<stream_socket>>(state,
                                                [](std::optional<stream_socket>& s) { s.reset(); });
}

// What stream_socket::close() collects before it releases the descriptor (see finish() in
// src/net/stream_socket.cpp), done on a socket that stays open: the difference to close:raw is
// the part of orderly's close that is not the close itself.
void report_only(benchmark::State& state) {
    fd_pair p = tcp_pair();
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    const int fd = p.a;
    for (auto _ : state) {
        const auto started = clock::now();
        close_report r;
        if (auto ep = local_endpoint_of(fd)) r.local = *ep;
        if (auto ep = peer_endpoint_of(fd)) r.peer = *ep;
        if (auto ti = read_tcp_info(fd)) {
            r.tcp = *ti;
            r.unacked_bytes = ti->send_queue_bytes;
            r.unread_bytes = ti->recv_queue_bytes;
        }
        if (auto pending = take_socket_error(fd); pending && *pending != 0) {
            r.outcome = close_outcome::error;
        }
        r.close_duration = clock::now() - started;
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
    close_pair(p);
}

void tcp_info_raw(benchmark::State& state) {
    fd_pair p = tcp_pair();
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    for (auto _ : state) {
        ::tcp_info info{};
        socklen_t len = sizeof info;
        if (::getsockopt(p.a, level_tcp, TCP_INFO, &info, &len) != 0) {
            state.SkipWithError("getsockopt TCP_INFO failed");
            break;
        }
        benchmark::DoNotOptimize(info);
    }
    state.SetItemsProcessed(state.iterations());
    close_pair(p);
}

// read_tcp_info adds SIOCINQ and SIOCOUTQ: three syscalls to the raw variant's one.
void tcp_info_orderly(benchmark::State& state) {
    fd_pair p = tcp_pair();
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    for (auto _ : state) {
        auto ti = read_tcp_info(p.a);
        if (!ti) {
            state.SkipWithError("read_tcp_info failed");
            break;
        }
        benchmark::DoNotOptimize(ti);
    }
    state.SetItemsProcessed(state.iterations());
    close_pair(p);
}

[[maybe_unused]] const bool registered = [] {
    benchmark::RegisterBenchmark("close/tcp:raw", close_raw);
    benchmark::RegisterBenchmark("close/tcp:orderly_close", close_orderly);
    benchmark::RegisterBenchmark("close/tcp:orderly_destructor", close_orderly_destructor);
    benchmark::RegisterBenchmark("close/tcp:orderly_report_only", report_only);
    benchmark::RegisterBenchmark("tcp_info/tcp:raw", tcp_info_raw);
    benchmark::RegisterBenchmark("tcp_info/tcp:orderly", tcp_info_orderly);
    return true;
}();

}  // namespace
}  // namespace orderly::micro
