// What SHUT_RD really does on Linux, pinned down so a kernel change would show up here:
// nothing is sent to the peer, the peer's later writes still succeed and are acknowledged, raw
// recv(2) returns 0 while the queue is empty but still hands out bytes that arrive afterwards.
// orderly's recv() answers end-of-stream after shutdown(read), whatever arrives.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

#include "orderly/orderly.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

void wait_for_queue(const stream_socket& s, std::uint32_t bytes) {
    for (int i = 0; i < 1000; ++i) {
        auto ti = s.tcp_info();
        if (ti && ti->recv_queue_bytes >= bytes) return;
        std::this_thread::sleep_for(1ms);
    }
}

TEST(shut_rd, linux_semantics) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::read));

    // Raw recv right after SHUT_RD with an empty queue: 0, like EOF.
    char buf[64];
    EXPECT_EQ(::recv(p.server.native_handle(), buf, sizeof buf, MSG_DONTWAIT), 0);

    // The peer is not told anything: its state stays ESTABLISHED and its writes succeed.
    auto peer_info = p.client.tcp_info();
    ASSERT_TRUE(peer_info);
    EXPECT_EQ(peer_info->state, tcp_state::established);
    ASSERT_TRUE(p.client.send_all("after SHUT_RD").has_value());
    wait_for_queue(p.server, 13);

    // Linux queued the late bytes: SHUT_RD does not discard them.
    auto ti = p.server.tcp_info();
    ASSERT_TRUE(ti);
    EXPECT_EQ(ti->recv_queue_bytes, 13U);

    // orderly says end-of-stream, as the caller asked.
    auto n = p.server.recv(std::span<char>(buf), deadline::after(1s));
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);

    // The raw call still returns them.
    const ssize_t raw = ::recv(p.server.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
    EXPECT_EQ(raw, 13);

    // Our direction is untouched.
    ASSERT_TRUE(p.server.send_all("still writing").has_value());
    char got[32];
    auto m = p.client.recv(std::span<char>(got), deadline::after(5s));
    ASSERT_TRUE(m);
    EXPECT_EQ(std::string(got, *m), "still writing");
}

TEST(shut_rd, close_with_bytes_that_arrived_after_shut_rd_resets_the_peer) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::read));
    ASSERT_TRUE(p.client.send_all("late").has_value());
    wait_for_queue(p.server, 4);
    auto r = p.server.close();
    EXPECT_EQ(r.outcome, close_outcome::unread_data_discarded);
    char b[8];
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), errc::peer_reset);
}

}  // namespace
}  // namespace orderly
