// send/recv on a connected pair: raw ::send/::recv against stream_socket::send/recv, and a 1 MiB
// bulk send against stream_socket::send_all. Names are `<case>:<variant>`; `raw` is the baseline.

#include <benchmark/benchmark.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "orderly/core/unique_fd.hpp"
#include "orderly/net/stream_socket.hpp"
#include "pairs.hpp"

namespace orderly::micro {
namespace {

enum class transport { socketpair, tcp };

fd_pair make_pair(transport t) {
    return t == transport::socketpair ? unix_pair() : tcp_pair();
}

// One round: `size` bytes sent on a, the same bytes received on b, both in this thread. The send
// always completes in one call (the buffer is empty again after every round) and, on loopback,
// the bytes are in b's queue when send() returns, so neither side ever waits.
void send_recv_raw(benchmark::State& state, transport t, std::size_t size) {
    fd_pair p = make_pair(t);
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    std::vector<std::byte> out(size, std::byte{0x5a});
    std::vector<std::byte> in(size);
    for (auto _ : state) {
        const ssize_t n = ::send(p.a, out.data(), out.size(), MSG_NOSIGNAL);
        if (n != static_cast<ssize_t>(size)) {
            state.SkipWithError("send failed or was short");
            break;
        }
        std::size_t got = 0;
        while (got < size) {
            const ssize_t r = ::recv(p.b, in.data() + got, size - got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += static_cast<std::size_t>(r);
        }
        if (got != size) {
            state.SkipWithError("recv failed");
            break;
        }
        benchmark::DoNotOptimize(in.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
    state.SetItemsProcessed(state.iterations());  // one item = one send + its recv
    close_pair(p);
}

void send_recv_orderly(benchmark::State& state, transport t, std::size_t size) {
    fd_pair p = make_pair(t);
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    // Adopting makes the descriptors O_NONBLOCK: every wait is a poll() with a deadline. The
    // default deadline::never() is what a caller who does not care about timeouts passes.
    stream_socket a{unique_fd(p.a)};
    stream_socket b{unique_fd(p.b)};
    std::vector<std::byte> out(size, std::byte{0x5a});
    std::vector<std::byte> in(size);
    for (auto _ : state) {
        auto n = a.send(std::span<const std::byte>(out));
        if (!n || *n != size) {
            state.SkipWithError("send failed or was short");
            break;
        }
        std::size_t got = 0;
        while (got < size) {
            auto r = b.recv(std::span(in).subspan(got));
            if (!r || *r == 0) break;
            got += *r;
        }
        if (got != size) {
            state.SkipWithError("recv failed");
            break;
        }
        benchmark::DoNotOptimize(in.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
    state.SetItemsProcessed(state.iterations());
}

// Bulk: 1 MiB per iteration into a TCP loopback connection that a second thread drains. The
// socket buffers are smaller than 1 MiB, so the sender has to wait for room: the raw sender blocks
// inside send() (a blocking descriptor, as a hand-written program has), orderly's send_all gets
// EAGAIN and waits in poll(). That difference is what this case is about.
constexpr std::size_t bulk_size = std::size_t{1} << 20;

// Reads and discards until EOF or an error. Always a blocking descriptor.
void drain(int fd) {
    std::vector<std::byte> buf(std::size_t{256} << 10);
    for (;;) {
        const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
        if (r > 0) continue;
        if (r < 0 && errno == EINTR) continue;
        return;
    }
}

// The main thread's CPU time leaves out the time it sleeps waiting for room, so
// SetBytesProcessed (a rate per CPU second) would flatter whichever variant sleeps more. The rate
// here is per wall-clock second over the whole timed loop; compare the Time (real) column too.
// Up to a few MB may still sit in socket buffers when the loop ends: small against the hundreds
// of MiB one run sends.
template <class SendOne, class EndWriting>
void run_bulk(benchmark::State& state, int reader_fd, SendOne send_one, EndWriting end_writing) {
    std::thread reader(drain, reader_fd);
    std::vector<std::byte> data(bulk_size, std::byte{0x5a});
    const auto started = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (!send_one(std::span<const std::byte>(data))) {
            state.SkipWithError("send failed");
            break;
        }
    }
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
    end_writing();  // our FIN ends the reader's loop
    reader.join();
    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(bulk_size);
    state.counters["bytes_per_second"] =
        benchmark::Counter(wall.count() > 0 ? bytes / wall.count() : 0.0);
}

void send_all_raw(benchmark::State& state) {
    fd_pair p = tcp_pair();
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    auto send_one = [fd = p.a](std::span<const std::byte> data) {
        std::size_t sent = 0;
        while (sent < data.size()) {
            const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    };
    run_bulk(state, p.b, send_one, [fd = p.a] { (void)::shutdown(fd, SHUT_WR); });
    close_pair(p);
}

void send_all_orderly(benchmark::State& state) {
    fd_pair p = tcp_pair();
    if (!p.ok()) {
        state.SkipWithError("could not make a connected pair");
        return;
    }
    stream_socket a{unique_fd(p.a)};
    auto send_one = [&a](std::span<const std::byte> data) { return a.send_all(data).has_value(); };
    run_bulk(state, p.b, send_one, [&a] { (void)a.shutdown(shut::write); });
    ::close(p.b);
}

// Registered by hand so that the names carry the `<case>:<variant>` shape exactly.
[[maybe_unused]] const bool registered = [] {
    struct io_case {
        const char* name;
        transport t;
        std::size_t size;
    };
    for (const io_case& c : {io_case{"send_recv_64/socketpair", transport::socketpair, 64},
                             io_case{"send_recv_64/tcp", transport::tcp, 64},
                             io_case{"send_recv_4KiB/socketpair", transport::socketpair, 4096},
                             io_case{"send_recv_4KiB/tcp", transport::tcp, 4096}}) {
        const std::string base = c.name;
        benchmark::RegisterBenchmark((base + ":raw").c_str(), send_recv_raw, c.t, c.size);
        benchmark::RegisterBenchmark((base + ":orderly").c_str(), send_recv_orderly, c.t, c.size);
    }
    benchmark::RegisterBenchmark("send_all_1MiB/tcp:raw", send_all_raw);
    benchmark::RegisterBenchmark("send_all_1MiB/tcp:orderly", send_all_orderly);
    return true;
}();

}  // namespace
}  // namespace orderly::micro
