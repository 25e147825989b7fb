#include "orderly/diag/kernel_socket.hpp"

#include <gtest/gtest.h>

#include "diag_test_util.hpp"

namespace orderly::diag {
namespace {

using test::tcp_row;
using test::unix_row;

TEST(kernel_socket, shutdown_arrows_read_like_ss) {
    EXPECT_EQ(shutdown_arrow(std::uint8_t{0}), "<->");
    EXPECT_EQ(shutdown_arrow(shutdown_read), "-->");
    EXPECT_EQ(shutdown_arrow(shutdown_write), "<--");
    EXPECT_EQ(shutdown_arrow(std::uint8_t{shutdown_read | shutdown_write}), "---");
    EXPECT_EQ(shutdown_arrow(std::nullopt), "");
}

TEST(kernel_socket, timer_and_kind_names) {
    EXPECT_EQ(to_string(tcp_timer::off), "off");
    EXPECT_EQ(to_string(tcp_timer::retransmit), "on");
    EXPECT_EQ(to_string(tcp_timer::keepalive), "keepalive");
    EXPECT_EQ(to_string(tcp_timer::time_wait), "timewait");
    EXPECT_EQ(to_string(tcp_timer::zero_window_probe), "persist");
    EXPECT_EQ(to_string(static_cast<tcp_timer>(9)), "unknown");
    EXPECT_EQ(to_string(socket_kind::unix_stream), "unix_stream");
}

TEST(kernel_socket, state_words_are_the_event_layers) {
    EXPECT_EQ(to_string(socket_state::open), "open");
    EXPECT_EQ(to_string(socket_state::half_closed_by_peer), "half_closed_by_peer");
    EXPECT_EQ(to_string(socket_state::half_closed_by_us), "half_closed_by_us");
    EXPECT_EQ(to_string(socket_state::closing), "closing");
    EXPECT_EQ(to_string(socket_state::closed), "closed");
    EXPECT_EQ(to_string(socket_state::listening), "listening");
    EXPECT_EQ(to_string(socket_state::opening), "opening");
}

socket_state tcp(tcp_state st, std::uint64_t inode = 7, std::uint8_t shut = 0) {
    auto k = tcp_row(st, "127.0.0.1:1", "127.0.0.1:2", inode);
    k.shutdown = shut;
    return classify(k);
}

TEST(kernel_socket, classifies_tcp_states) {
    EXPECT_EQ(tcp(tcp_state::established), socket_state::open);
    EXPECT_EQ(tcp(tcp_state::established, 7, shutdown_write), socket_state::half_closed_by_us);
    EXPECT_EQ(tcp(tcp_state::close_wait), socket_state::half_closed_by_peer);
    EXPECT_EQ(tcp(tcp_state::fin_wait1), socket_state::half_closed_by_us);
    EXPECT_EQ(tcp(tcp_state::fin_wait2), socket_state::half_closed_by_us);
    EXPECT_EQ(tcp(tcp_state::last_ack), socket_state::closing);
    EXPECT_EQ(tcp(tcp_state::closing), socket_state::closing);
    EXPECT_EQ(tcp(tcp_state::time_wait, 0), socket_state::closed);
    EXPECT_EQ(tcp(tcp_state::listen), socket_state::listening);
    EXPECT_EQ(tcp(tcp_state::syn_sent), socket_state::opening);
    EXPECT_EQ(tcp(tcp_state::new_syn_recv, 0), socket_state::opening);
    // No descriptor holds it: whatever the TCP state, the program is done with it.
    EXPECT_EQ(tcp(tcp_state::fin_wait2, 0), socket_state::closed);
    EXPECT_EQ(tcp(tcp_state::last_ack, 0), socket_state::closed);
}

TEST(kernel_socket, classifies_unix_sockets_by_their_shutdown_bits) {
    auto k = unix_row(1, 2);
    EXPECT_EQ(classify(k), socket_state::open);
    k.shutdown = shutdown_read;
    EXPECT_EQ(classify(k), socket_state::half_closed_by_peer);
    k.shutdown = shutdown_write;
    EXPECT_EQ(classify(k), socket_state::half_closed_by_us);
    k.shutdown = shutdown_read | shutdown_write;
    EXPECT_EQ(classify(k), socket_state::closing);
    k.unix_peer_gone = true;
    EXPECT_EQ(classify(k), socket_state::half_closed_by_peer);
    k.state = tcp_state::listen;
    EXPECT_EQ(classify(k), socket_state::listening);
    k.state = tcp_state::close;  // unconnected
    EXPECT_EQ(classify(k), socket_state::opening);
}

TEST(kernel_socket, unread_bytes_do_not_count_the_peers_fin) {
    auto k = tcp_row(tcp_state::close_wait, "127.0.0.1:1", "127.0.0.1:2", 7);
    k.recv_queue = 6;  // 5 bytes and the FIN
    EXPECT_EQ(unread_bytes(k), 5U);
    EXPECT_FALSE(end_of_stream_read(k));
    k.recv_queue = 1;  // only the FIN: everything read, but not the end of stream
    EXPECT_EQ(unread_bytes(k), 0U);
    EXPECT_FALSE(end_of_stream_read(k));
    k.recv_queue = 0;
    EXPECT_TRUE(end_of_stream_read(k));
    k.state = tcp_state::established;  // no FIN yet: every byte is data
    k.recv_queue = 6;
    EXPECT_EQ(unread_bytes(k), 6U);
    EXPECT_FALSE(end_of_stream_read(k));
    auto u = unix_row(1, 2);
    u.shutdown = shutdown_read;
    u.recv_queue = 6;
    EXPECT_EQ(unread_bytes(u), 6U);
}

TEST(kernel_socket,
     only_tcp_sockets_without_a_descriptor_that_are_still_ending_are_left_to_the_kernel) {
    EXPECT_TRUE(left_to_kernel(tcp_row(tcp_state::fin_wait1, "127.0.0.1:1", "127.0.0.1:2", 0)));
    EXPECT_TRUE(left_to_kernel(tcp_row(tcp_state::fin_wait2, "127.0.0.1:1", "127.0.0.1:2", 0)));
    EXPECT_TRUE(left_to_kernel(tcp_row(tcp_state::last_ack, "127.0.0.1:1", "127.0.0.1:2", 0)));
    EXPECT_TRUE(left_to_kernel(tcp_row(tcp_state::closing, "127.0.0.1:1", "127.0.0.1:2", 0)));
    EXPECT_FALSE(left_to_kernel(tcp_row(tcp_state::time_wait, "127.0.0.1:1", "127.0.0.1:2", 0)));
    EXPECT_FALSE(left_to_kernel(tcp_row(tcp_state::fin_wait2, "127.0.0.1:1", "127.0.0.1:2", 9)));
    EXPECT_FALSE(left_to_kernel(unix_row(0, 0)));
}

}  // namespace
}  // namespace orderly::diag
