#include "orderly/diag/changes.hpp"

#include <gtest/gtest.h>

#include "diag_test_util.hpp"

namespace orderly::diag {
namespace {

using std::chrono::milliseconds;
using test::held;
using test::tcp_row;

socket_info tcp_conn(tcp_state st, std::uint64_t inode, int fd) {
    return held(tcp_row(st, "127.0.0.1:8000", "127.0.0.1:5000", inode), fd, 10);
}

TEST(changes, nothing_changed_is_no_line) {
    process_snapshot a;
    a.connections.push_back(tcp_conn(tcp_state::established, 1, 5));
    EXPECT_TRUE(changes_between(a, a).empty());
}

TEST(changes, names_sockets_that_entered_a_state_and_those_gone) {
    process_snapshot before;
    before.connections = {tcp_conn(tcp_state::established, 1, 5),
                          tcp_conn(tcp_state::established, 3, 7)};
    before.descriptors.open = 8;
    process_snapshot after;
    after.connections = {tcp_conn(tcp_state::close_wait, 1, 5),
                         tcp_conn(tcp_state::close_wait, 2, 6)};
    after.descriptors.open = 9;
    const auto lines = changes_between(before, after);
    ASSERT_EQ(lines.size(), 3U);
    EXPECT_EQ(lines[0], "+2 half_closed_by_peer (CLOSE_WAIT): fds 5, 6");
    EXPECT_EQ(lines[1], "-1 gone: fd 7");
    EXPECT_EQ(lines[2], "descriptors 8 -> 9");
}

TEST(changes, growing_queues_and_findings) {
    process_snapshot before;
    before.connections = {tcp_conn(tcp_state::established, 1, 5)};
    before.listeners = {held(tcp_row(tcp_state::listen, "0.0.0.0:8000", "", 9), 3, -1)};
    before.findings.push_back({finding_kind::fin_wait2, 1, {}, {}, {}, "", {}, ""});
    before.findings.push_back({finding_kind::close_wait, 2, {}, {}, {}, "", {}, ""});
    before.connections[0].kernel.send_queue = 4096;
    before.connections[0].kernel.recv_queue = 10;
    before.listeners[0].kernel.recv_queue = 1;
    process_snapshot after = before;
    after.connections[0].kernel.send_queue = 65536;
    after.connections[0].kernel.recv_queue = 0;  // shrinking is no news
    after.listeners[0].kernel.recv_queue = 4;
    process_snapshot traffic = before;  // empty before: bytes in flight, no news either
    traffic.connections[0].kernel.send_queue = 0;
    EXPECT_TRUE(changes_between(traffic, before).empty());
    after.findings = {{finding_kind::close_wait, 5, {}, {}, {}, "", {}, ""},
                      {finding_kind::send_queue_stuck, 1, {}, {}, {}, "", {}, ""}};
    const auto lines = changes_between(before, after);
    ASSERT_EQ(lines.size(), 5U);
    EXPECT_EQ(lines[0], "fd 3 0.0.0.0:8000: accept queue 1 -> 4");
    EXPECT_EQ(lines[1], "fd 5 127.0.0.1:8000: send queue 4096 -> 65536 B");
    EXPECT_EQ(lines[2], "close_wait: 2 -> 5");
    EXPECT_EQ(lines[3], "new finding: send_queue_stuck (1)");
    EXPECT_EQ(lines[4], "resolved: fin_wait2");
}

TEST(changes, unix_sockets_seen_unchanged_have_been_quiet_since_the_last_look) {
    process_snapshot before;
    before.taken = std::chrono::system_clock::time_point(std::chrono::seconds(100));
    auto u = test::unix_row(1, 0);
    u.shutdown = shutdown_read | shutdown_write;
    u.unix_peer_gone = true;
    before.connections = {held(u, 4, -1), held(u, 5, -1)};
    before.connections[1].kernel.cookie = 77;
    before.connections.push_back(tcp_conn(tcp_state::close_wait, 9, 6));
    process_snapshot after = before;
    after.taken = before.taken + std::chrono::milliseconds(2500);
    after.connections[1].kernel.recv_queue = 10;        // something arrived: not quiet
    after.connections[2].quiet_for = milliseconds(40);  // the kernel knows better
    carry_quiet_times(before, after);
    EXPECT_EQ(after.connections[0].quiet_for, milliseconds(2500));
    EXPECT_FALSE(after.connections[1].quiet_for.has_value());
    EXPECT_EQ(after.connections[2].quiet_for, milliseconds(40));
    // And a third look adds up.
    process_snapshot third = after;
    third.taken = after.taken + std::chrono::milliseconds(1000);
    third.connections[0].quiet_for.reset();
    carry_quiet_times(after, third);
    EXPECT_EQ(third.connections[0].quiet_for, milliseconds(3500));
}

// Retransmissions reset last_data_sent and duplicate ACKs last_ack_recv: across looks, a send
// queue has stood still when bytes_acked is the same and the queue no smaller.
TEST(changes, a_send_queue_stands_still_while_nothing_more_is_acknowledged) {
    process_snapshot before;
    before.taken = std::chrono::system_clock::time_point(std::chrono::seconds(100));
    for (std::uint64_t i = 1; i <= 3; ++i) {
        auto k = tcp_row(tcp_state::established, "127.0.0.1:8000", "127.0.0.1:5000", i);
        k.send_queue = 4000;
        k.timer = tcp_timer::retransmit;
        k.tcp->bytes_acked = 100;
        k.tcp->peer_window = 0;
        k.tcp->backoff = 1;
        k.tcp->rto_us = 400'000;  // one look proves 200 ms
        before.connections.push_back(held(k, static_cast<int>(i) + 3, 5));
    }
    ASSERT_EQ(before.connections[0].send_stalled_for, milliseconds(200));
    process_snapshot after = before;
    after.taken = before.taken + std::chrono::milliseconds(1000);
    after.connections[1].kernel.tcp->bytes_acked = 101;  // acknowledged a byte: it moved
    after.connections[2].kernel.send_queue = 5000;       // the program added: still stuck
    carry_quiet_times(before, after);
    EXPECT_EQ(after.connections[0].send_stalled_for, milliseconds(1200));
    EXPECT_TRUE(after.connections[0].stall_seen_across_looks);
    EXPECT_EQ(after.connections[1].send_stalled_for, milliseconds(200));
    EXPECT_FALSE(after.connections[1].stall_seen_across_looks);
    EXPECT_EQ(after.connections[2].send_stalled_for, milliseconds(1200));
    const auto fs = diagnose(after, {milliseconds(1000)});
    ASSERT_EQ(fs.size(), 1U);
    EXPECT_EQ(fs[0].fds, (std::vector<int>{4, 6}));
    EXPECT_NE(fs[0].evidence[0].find("unchanged for at least 1.2 s across looks"),
              std::string::npos)
        << fs[0].evidence[0];
    // A single look's bound that the next look contradicts is cut to the time between them.
    process_snapshot later = after;
    later.taken = after.taken + std::chrono::milliseconds(100);
    later.connections[0].kernel.tcp->bytes_acked = 200;
    later.connections[0].send_stalled_for = milliseconds(5000);
    carry_quiet_times(after, later);
    EXPECT_EQ(later.connections[0].send_stalled_for, milliseconds(100));
}

TEST(changes, a_tcp_socket_held_unconnected_is_so_since_the_look_that_saw_it) {
    process_snapshot before;
    before.taken = std::chrono::system_clock::time_point(std::chrono::seconds(100));
    before.unconnected = {{7, 70, "TCP", std::nullopt}, {8, 80, "TCP", std::nullopt}};
    process_snapshot after = before;
    after.taken = before.taken + std::chrono::milliseconds(700);
    after.unconnected[1].inode = 81;  // fd 8 closed and reused: a new socket
    after.unconnected.push_back({9, 90, "TCPv6", std::nullopt});
    carry_quiet_times(before, after);
    EXPECT_EQ(after.unconnected[0].held_for, milliseconds(700));
    EXPECT_FALSE(after.unconnected[1].held_for.has_value());
    EXPECT_FALSE(after.unconnected[2].held_for.has_value());
    const auto lines = changes_between(before, after);
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(lines[0], "+2 TCP not connected (state CLOSE), still held: fds 8, 9");
}

}  // namespace
}  // namespace orderly::diag
