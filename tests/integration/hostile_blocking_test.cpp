// Hostile peers against the blocking layer (stream_socket): a peer that never reads, one that
// floods while we drain, a slowloris, one that half-closes and then vanishes. Each case checks the
// close report, that the call ends within its deadline (+10 %, measured), and nothing hangs.
//
// The blocking layer's deadlines are absolute points in time (orderly::deadline), so one deadline
// passed to every call of a request bounds the whole request: a trickling peer cannot push it back.
// A fresh deadline per recv() would be pushed back by every byte; that is the caller's choice.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>

#include "orderly/orderly.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// The call took at least `want` and at most 10 % more.
void expect_within(clock::duration took, clock::duration want) {
    EXPECT_GE(took, want) << "ended early";
    EXPECT_LE(took, want + want / 10)
        << "took " << std::chrono::duration<double, std::milli>(took).count()
        << " ms for a deadline of " << std::chrono::duration<double, std::milli>(want).count()
        << " ms";
}

// After an abort the peer's next writes fail with peer_reset (the RST arrived).
bool peer_sees_reset(stream_socket& s) {
    for (int i = 0; i < 100; ++i) {
        auto n = s.send("x", deadline::after(100ms));
        if (!n) return n.error() == errc::peer_reset;
        std::this_thread::sleep_for(2ms);
    }
    return false;
}

// 1. The peer never reads: our send buffer and its receive buffer fill. send_all stops at its
// deadline with the exact count; close_gracefully then times out (no EOF either) and aborts, and
// the report says how much the kernel still held for the peer.
TEST(hostile_blocking, peer_that_never_reads_ends_by_deadline_with_unacked_bytes) {
    auto p = test::make_pair();
    const std::string big(32U << 20, 'w');
    auto t0 = clock::now();
    const auto sent = p.server.send_all(big, deadline::after(600ms));
    expect_within(clock::now() - t0, 600ms);
    EXPECT_EQ(sent.error(), errc::timed_out);
    EXPECT_GT(sent.bytes, 0U);
    EXPECT_LT(sent.bytes, big.size()) << "the kernel took 32 MiB: nothing was tested";
    EXPECT_EQ(p.server.bytes_sent(), sent.bytes);

    t0 = clock::now();
    const auto r = p.server.close_gracefully({.timeout = 500ms, .drain_limit = 1 << 20});
    expect_within(clock::now() - t0, 500ms);
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(r.error, errc::timed_out);
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    EXPECT_GT(r.unacked_bytes, 0U) << "the bytes the peer never took were discarded by the abort";
    EXPECT_EQ(r.bytes_sent, sent.bytes);
    EXPECT_FALSE(p.server.is_open());
    EXPECT_TRUE(peer_sees_reset(p.client));
}

// 2. The peer floods while we drain: close_gracefully gives up at the drain cap long before its
// deadline, aborts, and the flooder's writes fail with a reset.
TEST(hostile_blocking, flooding_peer_hits_the_drain_limit_and_gets_rst) {
    auto p = test::make_pair();
    std::atomic<bool> stop{false};
    std::error_code flood_error;           // written by the flood thread, read after join()
    std::atomic<bool> flood_ended{false};  // what the main thread may read meanwhile
    std::thread flood([&] {
        const std::string chunk(16384, 'f');
        while (!stop.load()) {
            auto n = p.client.send(chunk, deadline::after(50ms));
            if (!n && n.error() != errc::timed_out) {
                flood_error = n.error();
                flood_ended = true;
                break;
            }
        }
    });
    std::this_thread::sleep_for(20ms);  // the flood is on before we start closing
    constexpr std::uint64_t limit = 256U << 10;
    const auto t0 = clock::now();
    const auto r = p.server.close_gracefully({.timeout = 5s, .drain_limit = limit});
    const auto took = clock::now() - t0;
    // The flooder stops on its own when the RST arrives; the flag is a safety net.
    for (int i = 0; i < 250 && !flood_ended.load(); ++i)
        std::this_thread::sleep_for(2ms);
    stop = true;
    flood.join();
    EXPECT_EQ(r.outcome, close_outcome::drain_limit) << r.to_string();
    EXPECT_EQ(r.error, errc::drain_limit);
    EXPECT_GE(r.bytes_drained, limit);
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    EXPECT_LT(took, 1s) << "the cap, not the 5 s deadline, must end a flood";
    EXPECT_EQ(flood_error, errc::peer_reset) << "the flooder must see the RST";
}

// 3. A slowloris sends one byte every 100 ms and never finishes its request. One absolute deadline
// for the whole request ends it on time despite the trickle; the drain that follows is bounded by
// close_gracefully's own deadline although bytes keep coming.
TEST(hostile_blocking, slowloris_is_ended_by_one_request_deadline) {
    auto p = test::make_pair();
    std::atomic<bool> stop{false};
    std::thread trickle([&] {
        while (!stop.load()) {
            if (!p.client.send("s", deadline::after(1s))) break;
            std::this_thread::sleep_for(100ms);
        }
    });
    std::string request;
    auto t0 = clock::now();
    const auto rd = p.server.read_to_end(request, deadline::after(800ms));
    expect_within(clock::now() - t0, 800ms);
    EXPECT_EQ(rd.error(), errc::timed_out);
    EXPECT_GE(rd.bytes, 5U) << "the trickle did arrive";
    EXPECT_EQ(request.size(), rd.bytes);

    t0 = clock::now();
    const auto r = p.server.close_gracefully({.timeout = 500ms, .drain_limit = 1 << 20});
    expect_within(clock::now() - t0, 500ms);
    stop = true;
    trickle.join();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_GE(r.bytes_drained, 2U) << "bytes kept arriving while we drained";
    EXPECT_EQ(r.bytes_received, rd.bytes);
}

// 4. The peer half-closes, then never reads and never closes, while we keep writing. send_all's
// deadline ends the writing; the application then aborts, and the report says what the peer
// never took.
TEST(hostile_blocking, peer_that_half_closes_then_vanishes_ends_by_write_deadline) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.client.shutdown(shut::write));
    char b[16];
    auto n = p.server.recv(std::span<char>(b), deadline::after(2s));
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, 0U) << "the peer's FIN";
    EXPECT_TRUE(p.server.can_write()) << "half-closed, not over";

    const std::string big(32U << 20, 'h');
    const auto t0 = clock::now();
    const auto sent = p.server.send_all(big, deadline::after(600ms));
    expect_within(clock::now() - t0, 600ms);
    EXPECT_EQ(sent.error(), errc::timed_out);
    EXPECT_LT(sent.bytes, big.size());

    const auto r = p.server.abort();
    EXPECT_EQ(r.outcome, close_outcome::aborted) << r.to_string();
    EXPECT_TRUE(r.peer_eof);
    EXPECT_GT(r.unacked_bytes, 0U) << "what the vanished peer never took";
    EXPECT_EQ(r.bytes_sent, sent.bytes);
}

// 4b. The same peer, but we end with close_gracefully. Its EOF was read already, so nothing is
// left to drain, yet the bytes we wrote (and our FIN behind them) are still queued: the peer never
// took them. The report must not call that the orderly end: close_gracefully waits for the
// acknowledgements until its deadline, then aborts.
TEST(hostile_blocking, close_gracefully_after_half_close_and_unread_output_is_not_clean) {
    auto p = test::make_pair();
    ASSERT_TRUE(p.client.shutdown(shut::write));
    char b[16];
    ASSERT_EQ(*p.server.recv(std::span<char>(b), deadline::after(2s)), 0U);
    const auto sent = p.server.send_all(std::string(32U << 20, 'h'), deadline::after(200ms));
    EXPECT_EQ(sent.error(), errc::timed_out);
    const auto t0 = clock::now();
    const auto r = p.server.close_gracefully({.timeout = 300ms, .drain_limit = 1 << 20});
    EXPECT_LE(clock::now() - t0, 330ms);
    EXPECT_GE(clock::now() - t0, 300ms);
    EXPECT_GT(r.unacked_bytes, 0U);
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
}

}  // namespace
}  // namespace orderly
