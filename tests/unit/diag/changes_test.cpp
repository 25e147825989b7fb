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

}  // namespace
}  // namespace orderly::diag
