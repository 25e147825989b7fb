// Fault injection against the blocking layer: stream_socket::close_gracefully() on the server's
// side (namespace A) while the network towards the client (namespace B) fails.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fault_common.hpp"

namespace orderly::test::faults {
namespace {

constexpr auto close_deadline = 1s;

// The partition comes while the server is sending 16 MiB (more than the socket buffers can hold)
// and the client is reading them as fast as it can. TCP cannot tell a partition from a slow reader:
// the send buffer fills and send_all() ends with a *write* timeout at its own deadline, with an
// exact count of what the kernel took. The close that follows queues a FIN behind the unsent bytes,
// so it can never be delivered: the close ends with a *close* timeout at its deadline, aborts, and
// reports the bytes still owed.
TEST(blocking_faults, partition_during_exchange_times_out_the_write_then_the_close) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());

    std::atomic<bool> stop{false};
    std::atomic<bool> partitioned{false};
    std::thread reader([&] {
        bool tried = false;
        std::size_t got = 0;
        char buf[65536];
        while (!stop.load()) {
            auto n = link.client.recv(std::span<char>(buf), deadline::after(20ms));
            if (n && *n == 0) break;
            if (n) got += *n;
            if (got >= (256U << 10) && !tried) {
                tried = true;
                partitioned = net.partition(side::b);
            }
        }
    });
    const std::string body = pattern(16U << 20);
    const auto t0 = steady::now();
    const transfer_result sent = link.server.send_all(body, deadline::after(close_deadline));
    const auto write_took = steady::now() - t0;

    const auto t1 = steady::now();
    const close_report r = link.server.close_gracefully(close_within(close_deadline));
    const auto close_took = steady::now() - t1;
    stop = true;
    reader.join();

    EXPECT_TRUE(partitioned.load()) << net.error();
    EXPECT_EQ(sent.error(), make_error_code(errc::timed_out));
    EXPECT_LT(sent.bytes, body.size());
    EXPECT_TRUE(near_deadline(write_took, close_deadline));
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    EXPECT_GT(r.unacked_bytes, 0U) << "the partition keeps the tail unacknowledged";
    EXPECT_TRUE(near_deadline(close_took, close_deadline));
    note_timing("write timed_out", write_took, close_deadline);
    note_timing(to_string(r.outcome), close_took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// Our FIN reaches the client (it reads EOF), then the partition swallows the client's FIN: the
// drain never sees the peer's EOF and ends as timed_out at its deadline.
TEST(blocking_faults, partition_during_drain_times_out_at_the_deadline) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    ASSERT_TRUE(link.server.send_all("reply").has_value());

    std::string got;
    transfer_result read;
    std::atomic<bool> partitioned{false};
    std::thread peer([&] {
        read = link.client.read_to_end(got, deadline::after(3s));
        partitioned = net.partition(side::b);
        (void)link.client.shutdown(shut::write);  // the FIN that never arrives
    });
    const auto t0 = steady::now();
    const close_report r = link.server.close_gracefully(close_within(close_deadline));
    const auto took = steady::now() - t0;
    peer.join();

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got, "reply");
    EXPECT_TRUE(partitioned.load()) << net.error();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(r.error, make_error_code(errc::timed_out));
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    EXPECT_TRUE(near_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// After the request, every segment that reaches the client is answered with RST. Our FIN is the
// next segment, so the drain sees ECONNRESET at once: peer_reset, long before the deadline.
TEST(blocking_faults, injected_reset_ends_the_close_as_peer_reset) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    ASSERT_TRUE(link.client.send_all("request").has_value());
    std::string req;
    ASSERT_EQ(read_at_least(link.server, 7, deadline::after(3s), &req), 7U);
    ASSERT_TRUE(net.reset(side::b)) << net.error();

    const auto t0 = steady::now();
    const close_report r = link.server.close_gracefully(close_within(close_deadline));
    const auto took = steady::now() - t0;

    EXPECT_EQ(r.outcome, close_outcome::peer_reset) << r.to_string();
    EXPECT_TRUE(within_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// 5 % of the packets in each direction are dropped. A 512 KiB request and a 1 MiB reply still
// arrive byte for byte, and the close is clean: TCP retransmits, the application sees nothing.
TEST(blocking_faults, five_percent_loss_delivers_every_byte_and_closes_clean) {
    constexpr auto limit = 30s;
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    ASSERT_TRUE(net.loss(side::b, 5)) << net.error();

    const std::string request = pattern(512U << 10, 1);
    const std::string reply = pattern(1U << 20, 2);
    const auto until = deadline::after(limit);
    std::string reply_got;
    transfer_result client_sent;
    transfer_result client_read;
    close_report client_report;
    std::thread client([&] {
        client_sent = link.client.send_all(request, until);
        client_read = link.client.read_to_end(reply_got, until, 4U << 20);
        // Only now, with the whole reply read, does the client send its FIN: the server's drain
        // has to wait for it.
        client_report = link.client.close_gracefully(close_within(10s));
    });
    const auto t0 = steady::now();
    std::string request_got;
    (void)read_at_least(link.server, request.size(), until, &request_got);
    const transfer_result sent = link.server.send_all(reply, until);
    const close_report r = link.server.close_gracefully(close_within(until.remaining()));
    const auto took = steady::now() - t0;
    client.join();

    EXPECT_TRUE(client_sent.has_value()) << client_sent.error().message();
    EXPECT_EQ(request_got.size(), request.size());
    EXPECT_EQ(pattern_mismatch(request_got, 1), std::string_view::npos);
    EXPECT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_TRUE(client_read.has_value()) << client_read.error().message();
    EXPECT_EQ(reply_got.size(), reply.size());
    EXPECT_EQ(pattern_mismatch(reply_got, 2), std::string_view::npos);
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_EQ(client_report.outcome, close_outcome::clean) << client_report.to_string();
    EXPECT_TRUE(within_deadline(took, limit));
    const long long dropped = net.fault_hits(side::b);
    EXPECT_GT(dropped, 0) << "the loss rules dropped nothing";
    note_timing(to_string(r.outcome), took, limit);
    note_dropped(dropped);
}

}  // namespace
}  // namespace orderly::test::faults
