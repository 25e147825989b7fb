#include "orderly/diag/process_snapshot.hpp"

#include <gtest/gtest.h>

#include "diag_test_util.hpp"

namespace orderly::diag {
namespace {

using test::tcp_row;

process_info server_process() {
    process_info p;
    p.pid = 42;
    p.name = "server";
    p.command = "server --port 8000";
    p.uid = 1000;
    p.user = "alice";
    p.open_descriptors = 10;
    p.sockets = {{3, 10, ""}, {5, 11, ""}, {6, 99, "UDP"}, {7, 13, ""}};
    p.limit = {1024, 4096};
    return p;
}

std::vector<kernel_socket> table() {
    std::vector<kernel_socket> t;
    t.push_back(tcp_row(tcp_state::listen, "0.0.0.0:8000", "", 10));
    t.push_back(tcp_row(tcp_state::close_wait, "127.0.0.1:8000", "127.0.0.1:5000", 11));
    t.back().tcp->last_ack_recv_ms = 4000;
    t.back().tcp->last_data_recv_ms = 4100;
    t.back().tcp->last_data_sent_ms = 3900;
    t.push_back(tcp_row(tcp_state::fin_wait2, "127.0.0.1:8000", "127.0.0.1:5001", 0));
    t.push_back(tcp_row(tcp_state::fin_wait2, "127.0.0.1:9000", "127.0.0.1:5002", 0));
    t.push_back(tcp_row(tcp_state::time_wait, "127.0.0.1:8000", "127.0.0.1:5003", 0));
    t.push_back(tcp_row(tcp_state::established, "127.0.0.1:8000", "127.0.0.1:5004", 12));
    t.push_back(test::unix_row(13, 14));
    t.back().tcp.reset();
    return t;
}

TEST(process_snapshot, joins_descriptors_with_the_socket_table) {
    const auto s = assemble(server_process(), table());
    EXPECT_EQ(s.pid, 42);
    EXPECT_EQ(s.user, "alice");
    EXPECT_EQ(s.command, "server --port 8000");
    ASSERT_EQ(s.listeners.size(), 1U);
    EXPECT_EQ(s.listeners[0].fd, 3);
    EXPECT_EQ(s.listeners[0].state, socket_state::listening);
    EXPECT_FALSE(s.listeners[0].quiet_for.has_value());  // a listener's TCP_INFO says nothing
    ASSERT_EQ(s.connections.size(), 2U);
    EXPECT_EQ(s.connections[0].fd, 5);
    EXPECT_EQ(s.connections[0].state, socket_state::half_closed_by_peer);
    EXPECT_EQ(s.connections[0].quiet_for, std::chrono::milliseconds(3900));
    EXPECT_EQ(s.connections[1].fd, 7);
    EXPECT_EQ(s.connections[1].kernel.kind, socket_kind::unix_stream);
    EXPECT_FALSE(s.connections[1].quiet_for.has_value());
    EXPECT_EQ(s.descriptors.open, 10U);
    EXPECT_EQ(s.descriptors.sockets, 4U);
    EXPECT_EQ(s.descriptors.other_sockets, 1U);  // inode 99 is in no table
    EXPECT_EQ(s.descriptors.limit.soft, std::optional<std::uint64_t>(1024));
    const auto n = s.state_counts();
    EXPECT_EQ(n[static_cast<std::size_t>(socket_state::listening)], 1U);
    EXPECT_EQ(n[static_cast<std::size_t>(socket_state::half_closed_by_peer)], 1U);
    EXPECT_EQ(n[static_cast<std::size_t>(socket_state::open)], 1U);
    EXPECT_TRUE(s.findings.empty());  // assemble() does not diagnose
}

TEST(process_snapshot, claims_only_the_sockets_left_on_its_listening_ports) {
    const auto s = assemble(server_process(), table());
    ASSERT_EQ(s.orphans.size(), 1U);  // not the one on port 9000, not the TIME_WAIT
    EXPECT_EQ(s.orphans[0].kernel.peer.to_string(), "127.0.0.1:5001");
    EXPECT_EQ(s.orphans[0].fd, -1);
    EXPECT_EQ(s.orphans[0].state, socket_state::closed);

    // A listener bound to one address does not claim sockets of another address.
    auto t = table();
    t[0].local = endpoint::parse("127.0.0.2:8000").value();
    EXPECT_TRUE(assemble(server_process(), t).orphans.empty());
    // A process without listeners claims none.
    auto p = server_process();
    p.sockets = {{5, 11, ""}};
    EXPECT_TRUE(assemble(p, table()).orphans.empty());
}

TEST(process_snapshot, a_tcp_descriptor_in_no_table_is_unconnected_and_the_rest_other) {
    auto p = server_process();
    p.sockets.push_back({8, 100, "TCP"});
    p.sockets.push_back({9, 101, "TCPv6"});
    p.sockets.push_back({10, 102, "MPTCP"});  // its subflows are in the table, not it
    p.sockets.push_back({11, 103, ""});       // the protocol could not be read
    const auto s = assemble(p, table());
    EXPECT_EQ(s.descriptors.other_sockets, 5U);  // inodes 99 and 100-103 are in no table
    EXPECT_EQ(s.descriptors.unconnected_tcp, 2U);
    ASSERT_EQ(s.unconnected.size(), 2U);
    EXPECT_EQ(s.unconnected[0].fd, 8);
    EXPECT_EQ(s.unconnected[0].inode, 100U);
    EXPECT_EQ(s.unconnected[1].protocol, "TCPv6");
    EXPECT_FALSE(s.unconnected[0].held_for.has_value());  // one look cannot tell
    // A TCP inode that is in the table is a connection, whatever the protocol says.
    p.sockets = {{5, 11, "TCP"}};
    EXPECT_TRUE(assemble(p, table()).unconnected.empty());
}

}  // namespace
}  // namespace orderly::diag
