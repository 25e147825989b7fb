// Regression tests for close reports of the blocking layer that were wrong (issue 16); each failed
// before its fix. `clean` promises that the peer acknowledged every byte and both FINs went; an
// RST that our own kernel sent is never reported as the peer's.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/net/socket_options.hpp"
#include "orderly/net/stream_socket.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// Bug 2: the peer half-closes and stops reading; we send 300 KB (the kernel takes it all), shut
// down writing and close(): the bytes are still unacknowledged, so the end is not `clean`.
TEST(close_truth, close_with_unacknowledged_bytes_is_not_clean) {
    auto p = test::make_pair();
    ASSERT_TRUE(set_recv_buffer_size(p.client.native_handle(), 4096).has_value());
    ASSERT_TRUE(set_send_buffer_size(p.server.native_handle(), 4 << 20).has_value());
    ASSERT_TRUE(p.client.shutdown(shut::write).has_value());
    char b[16];
    auto eof = p.server.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(eof.has_value());
    ASSERT_EQ(*eof, 0U);
    const std::string body(300U << 10, 'z');
    const auto sent = p.server.send_all(body, deadline::after(5s));
    ASSERT_EQ(sent.bytes, body.size());
    ASSERT_TRUE(p.server.shutdown(shut::write).has_value());
    std::this_thread::sleep_for(20ms);
    const auto r = p.server.close();
    EXPECT_GT(r.unacked_bytes, 0U) << r.to_string();
    EXPECT_EQ(r.outcome, close_outcome::closed) << r.to_string();
    EXPECT_FALSE(r.orderly());
}

// The same with every byte acknowledged is `clean`: the rule is the acknowledgement, not the call.
TEST(close_truth, close_after_both_fins_and_every_ack_is_clean) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.client.shutdown(shut::write).has_value());
    char b[16];
    auto eof = p.server.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(eof.has_value() && *eof == 0U);
    ASSERT_EQ(p.server.send_all("reply", deadline::after(5s)).bytes, 5U);
    ASSERT_TRUE(p.server.shutdown(shut::write).has_value());
    std::string got;
    (void)p.client.read_to_end(got, deadline::after(5s));
    EXPECT_EQ(got, "reply");
    const auto r = p.server.close();
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_EQ(r.unacked_bytes, 0U);
}

// Bug 5: after shutdown(read) and our FIN, Linux answers the peer's late bytes with RST (RFC 1122)
// and discards them. That RST is ours: the report must not blame the peer.
TEST(close_truth, reset_after_our_shutdown_read_is_ours_not_the_peers) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::read).has_value());
    close_report r;
    std::thread closer([&] { r = p.server.close_gracefully({.timeout = 3s}); });
    // The client waits for the server's FIN, then writes (as a peer still answering would). Its
    // bytes meet a socket that shut down reading and sent FIN: the server's kernel resets.
    char b[16];
    auto eof = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(eof.has_value());
    EXPECT_EQ(*eof, 0U);
    (void)p.client.send("late bytes", deadline::after(1s));
    // The peer sees our RST (EPIPE: it arrives while the client is in CLOSE_WAIT).
    int err = 0;
    for (int i = 0; i < 500 && err == 0; ++i) {
        auto e = take_socket_error(p.client.native_handle());
        err = e ? *e : -1;
        if (err == 0) std::this_thread::sleep_for(2ms);
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << "the client should see the reset: " << err;
    closer.join();
    EXPECT_NE(r.outcome, close_outcome::peer_reset) << r.to_string();
    EXPECT_NE(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_EQ(r.outcome, close_outcome::unread_data_discarded) << r.to_string();
    EXPECT_EQ(r.error, errc::reset_after_shut_read) << r.to_string();
}

// shutdown(shut::both) then late bytes from the peer: the same RST, ours again (the lab's
// shut-rdwr scenario).
TEST(close_truth, late_bytes_after_shut_both_are_discarded_by_us) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::both).has_value());
    char b[16];
    auto eof = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(eof.has_value() && *eof == 0U);
    ASSERT_TRUE(p.client.send("late", deadline::after(1s)).has_value());
    // Wait until the server's kernel has answered with RST.
    for (int i = 0; i < 500; ++i) {
        auto ti = p.server.tcp_info();
        if (ti && ti->state == tcp_state::close) break;
        std::this_thread::sleep_for(2ms);
    }
    const auto r = p.server.close();
    EXPECT_EQ(r.outcome, close_outcome::unread_data_discarded) << r.to_string();
    EXPECT_EQ(r.error, errc::reset_after_shut_read) << r.to_string();
}

}  // namespace
}  // namespace orderly
