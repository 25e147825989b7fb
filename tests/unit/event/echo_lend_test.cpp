// An echo written from on_data: on io_uring the send goes out of the provided buffer the bytes
// arrived in, lent until the send completes (docs/event.md, "The hot path"). A position-dependent
// stream goes through a small pool (8 buffers of 512 bytes, reused within a few receives) and
// every byte is compared; on epoll the same echo runs through the direct send.
//
// What they catch: a lent buffer never given back starves the pool, and the second test hangs
// until its reads time out (checked by making give_back() do nothing). A buffer given back
// while its send still waits for room was not caught on the kernel this was written on (6.18):
// the first test does make such a send wait while the pool goes round (the buffer's memory had
// changed when the send completed), yet the peer got the bytes as they were.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "event_test_util.hpp"
#include "orderly/event/connection.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// A loop thread whose loop has a small pool of provided buffers.
class small_pool_loop {
  public:
    small_pool_loop() : lp(options()), thread_([this] { lp.run(); }) {}
    ~small_pool_loop() {
        lp.stop();
        thread_.join();
    }
    small_pool_loop(const small_pool_loop&) = delete;
    small_pool_loop& operator=(const small_pool_loop&) = delete;

    loop lp;

  private:
    static loop_options options() {
        loop_options o;
        o.uring_buffers = 8;
        o.uring_buffer_size = 512;
        return o;
    }
    std::thread thread_;
};

struct echo_result {
    std::atomic<int> closed{0};
    close_report report;
};

// Adopts `server` on the loop as an echo (FIN after the peer's), recording its close report.
connection_ptr adopt_echo(small_pool_loop& l, unique_fd server, echo_result& out) {
    auto cb = std::make_shared<connection_callbacks>();
    cb->on_data = [](connection& c, std::span<const std::byte> d) {
        EXPECT_TRUE(c.write(d).has_value());
    };
    cb->on_peer_eof = [](connection& c) { c.shutdown_write(); };
    cb->on_closed = [&out](connection&, const close_report& r) {
        out.report = r;
        out.closed.store(1);
    };
    std::promise<connection_ptr> p;
    auto f = p.get_future();
    l.lp.post([&] {
        auto c = connection::adopt(l.lp, std::move(server), cb);
        EXPECT_TRUE(c.has_value());
        p.set_value(c ? *c : connection_ptr{});
    });
    if (f.wait_for(10s) != std::future_status::ready) return {};
    return f.get();
}

// Reads to EOF (at most 30 s) into `got`, sleeping a little every 8 reads if `slow`.
bool read_back(int fd, std::string& got, bool slow) {
    char buf[1500];
    const auto until = std::chrono::steady_clock::now() + 30s;
    for (int reads = 0; std::chrono::steady_clock::now() < until; ++reads) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        got.append(buf, static_cast<std::size_t>(n));
        if (slow && reads % 8 == 0) std::this_thread::sleep_for(1ms);
    }
    return false;
}

// Sends `total` pattern bytes in `chunk`-sized writes and FIN from a thread; reads to EOF,
// pausing now and then so that the echo's sends stay in flight; returns what came back.
std::string exchange(int fd, std::size_t total, std::size_t chunk) {
    std::thread writer([fd, total, chunk] {
        std::string block;
        for (std::size_t off = 0; off < total; off += chunk) {
            const std::size_t n = std::min(chunk, total - off);
            block.resize(n);
            for (std::size_t i = 0; i < n; ++i)
                block[i] = test::pattern_byte(off + i);
            if (!test::send_all(fd, block.data(), n)) break;
        }
        ::shutdown(fd, SHUT_WR);
    });
    std::string got;
    (void)read_back(fd, got, true);
    writer.join();
    return got;
}

std::string pattern(std::size_t total) {
    std::string s(total, '\0');
    for (std::size_t i = 0; i < total; ++i)
        s[i] = test::pattern_byte(i);
    return s;
}

void set_buffer(int fd, int opt, int bytes) {
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes), 0);
}

TEST(echo_lend, an_echo_held_back_by_a_full_socket_comes_back_whole_and_in_order) {
    small_pool_loop l;
    auto pair = test::make_tcp_pair();
    ASSERT_TRUE(pair.client.valid() && pair.server.valid());
    // Small socket buffers: they fill after a few dozen echoes.
    set_buffer(pair.server.get(), SO_SNDBUF, 16384);
    set_buffer(pair.client.get(), SO_RCVBUF, 16384);
    echo_result res;
    auto c = adopt_echo(l, std::move(pair.server), res);
    ASSERT_TRUE(c);
    // Nothing is read until everything is sent, one chunk a millisecond: each echo goes out at
    // once, lent, while the socket has room, until the socket is full; that echo then waits,
    // still in the lent buffer, while the following chunks are received into the other buffers
    // of the pool, round and round, and queue behind it.
    constexpr std::size_t total = std::size_t{160} << 10;
    constexpr std::size_t chunk = 500;  // one receive each (buffers of 512 bytes)
    const int fd = pair.client.get();
    std::string block;
    for (std::size_t off = 0; off < total; off += chunk) {
        const std::size_t n = std::min(chunk, total - off);
        block.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            block[i] = test::pattern_byte(off + i);
        ASSERT_TRUE(test::send_all(fd, block.data(), n));
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::string got;
    EXPECT_TRUE(read_back(fd, got, false));
    ASSERT_EQ(got.size(), total);
    EXPECT_TRUE(got == pattern(total)) << "the echo came back changed";
    ASSERT_TRUE(test::wait_for([&] { return res.closed.load() == 1; }));
    EXPECT_EQ(res.report.outcome, close_outcome::clean) << res.report.to_string();
    EXPECT_EQ(res.report.bytes_sent, total);
    EXPECT_EQ(res.report.bytes_received, total);
    c.reset();
}

TEST(echo_lend, more_echoing_connections_than_the_pool_can_lend_all_come_back_whole) {
    // 12 connections on 8 buffers: at most 4 are lent at once, the rest are copied, and every
    // recv still finds a buffer.
    small_pool_loop l;
    constexpr int conns = 12;
    constexpr std::size_t total = std::size_t{256} << 10;
    std::vector<test::tcp_pair> pairs(conns);
    std::vector<echo_result> results(conns);
    std::vector<connection_ptr> held;
    for (int i = 0; i < conns; ++i) {
        pairs[i] = test::make_tcp_pair();
        ASSERT_TRUE(pairs[i].client.valid() && pairs[i].server.valid());
        set_buffer(pairs[i].server.get(), SO_SNDBUF, 16384);
        set_buffer(pairs[i].client.get(), SO_RCVBUF, 16384);
        held.push_back(adopt_echo(l, std::move(pairs[i].server), results[i]));
        ASSERT_TRUE(held.back());
    }
    std::vector<std::future<std::string>> got;
    for (int i = 0; i < conns; ++i) {
        got.push_back(std::async(
            std::launch::async, [fd = pairs[i].client.get()] { return exchange(fd, total, 700); }));
    }
    const std::string want = pattern(total);
    for (int i = 0; i < conns; ++i) {
        const std::string g = got[i].get();
        EXPECT_EQ(g.size(), total) << "connection " << i;
        EXPECT_TRUE(g == want) << "connection " << i << ": the echo came back changed";
    }
    for (int i = 0; i < conns; ++i) {
        ASSERT_TRUE(test::wait_for([&] { return results[i].closed.load() == 1; }));
        EXPECT_EQ(results[i].report.outcome, close_outcome::clean) << results[i].report.to_string();
    }
    held.clear();
}

}  // namespace
}  // namespace orderly
