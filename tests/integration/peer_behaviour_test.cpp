// Peers that do not play along: one that never sends EOF, one that resets, one that vanishes.

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "orderly/orderly.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(peer_never_sends_eof, close_gracefully_times_out_within_deadline_and_aborts) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.send_all("response").has_value());
    const auto t0 = clock::now();
    auto r = p.server.close_gracefully({.timeout = 300ms, .drain_limit = 1 << 20});
    const auto took = clock::now() - t0;
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(r.error, errc::timed_out);
    EXPECT_GE(took, 300ms);
    EXPECT_LE(took, 300ms + 100ms) << "took " << std::chrono::duration<double>(took).count();
    EXPECT_FALSE(p.server.is_open());
    // The client got the response and our FIN, then the abort's RST.
    std::string got;
    auto rd = p.client.read_to_end(got, deadline::after(5s));
    EXPECT_EQ(got, "response");
    EXPECT_TRUE(rd.has_value()) << "EOF arrives before the RST";
    std::error_code send_err;
    for (int i = 0; i < 50 && !send_err; ++i) {
        auto n = p.client.send("x");
        if (!n) send_err = n.error();
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(send_err, errc::peer_reset) << "the peer was aborted: writes must fail";
}

TEST(peer_resets, graceful_close_reports_peer_reset) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.server.send_all("data the peer will never read").has_value());
    (void)p.client.abort();
    std::this_thread::sleep_for(20ms);
    auto r = p.server.close_gracefully({.timeout = 2s});
    EXPECT_EQ(r.outcome, close_outcome::peer_reset) << r.to_string();
    EXPECT_EQ(r.error, errc::peer_reset);
}

TEST(peer_resets, recv_reports_peer_reset_and_plain_close_says_so) {
    auto p = test::make_pair();
    (void)p.client.abort();
    char b[4];
    auto n = p.server.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), errc::peer_reset);
    auto r = p.server.close();
    EXPECT_EQ(r.outcome, close_outcome::peer_reset);
}

TEST(peer_closes, writing_to_a_closed_peer_returns_an_error_value_without_sigpipe) {
    ASSERT_NE(std::signal(SIGPIPE, SIG_DFL), SIG_ERR);  // a SIGPIPE would kill this process
    auto p = test::make_pair();
    (void)p.client.close();
    std::error_code err;
    std::uint64_t sent = 0;
    for (int i = 0; i < 1000 && !err; ++i) {
        auto n = p.server.send(std::string(1024, 'w'), deadline::after(1s));
        if (n)
            sent += *n;
        else
            err = n.error();
    }
    EXPECT_EQ(err, errc::peer_reset) << "after " << sent << " bytes";
}

TEST(peer_half_closes, we_keep_writing_8_mib_and_every_byte_arrives) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.client.shutdown(shut::write));
    char b[4];
    ASSERT_EQ(*p.server.recv(std::span<char>(b), deadline::after(5s)), 0U);
    std::thread writer([&] {
        EXPECT_TRUE(p.server.send_all(std::string(8 << 20, 'h'), deadline::after(20s)).has_value());
        auto r = p.server.close_gracefully({.timeout = 10s});
        EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    });
    std::string got;
    auto rd = p.client.read_to_end(got, deadline::after(20s));
    writer.join();
    EXPECT_TRUE(rd.has_value());
    EXPECT_EQ(got.size(), 8U << 20);
}

}  // namespace
}  // namespace orderly
