// Fault injection against the event layer: connection::close_gracefully() on an accepted socket
// in namespace A, served by a loop thread, while the network towards the client in B fails.

#include "orderly/event/connection.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "served_connection.hpp"

namespace orderly::test::faults {
namespace {

constexpr auto close_deadline = 1s;

// The connection has 16 MiB to send and the client reads; the partition stops the flow with most
// of it still buffered in the connection. close_gracefully() wants FIN after the buffer, which
// can never drain, so its close timer fires: timed_out at the deadline with timeout_fired()
// `close` (not `write`: once closing, the close deadline governs, and no write_timeout is set).
TEST(connection_faults, partition_during_exchange_times_out_the_close) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    served_connection sc(std::move(link.server));
    ASSERT_TRUE(sc.ok());
    const auto body = std::make_shared<std::string>(pattern(16U << 20));
    sc.on_loop([body](connection& c) { (void)c.write(*body); });

    ASSERT_GE(read_at_least(link.client, 256U << 10, deadline::after(5s)), 256U << 10);
    ASSERT_TRUE(net.partition(side::b)) << net.error();
    const auto t0 = steady::now();
    sc.on_loop([](connection& c) { c.close_gracefully(close_deadline); });
    ASSERT_TRUE(sc.wait_closed(close_deadline + 2s));
    const auto took = sc.seen().closed_at - t0;

    const close_report& r = sc.seen().report;
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(sc.seen().fired, timeout_kind::close) << r.to_string();
    EXPECT_LT(r.bytes_sent, body->size());
    EXPECT_FALSE(r.peer_eof);
    EXPECT_TRUE(near_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// Our FIN arrives (the client reads the reply and EOF), then the partition eats the client's FIN.
TEST(connection_faults, partition_during_drain_times_out_at_the_deadline) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    served_connection sc(std::move(link.server));
    ASSERT_TRUE(sc.ok());

    const auto t0 = steady::now();
    sc.on_loop([](connection& c) {
        (void)c.write("reply");
        c.close_gracefully(close_deadline);
    });
    std::string got;
    const transfer_result read = link.client.read_to_end(got, deadline::after(3s));
    ASSERT_TRUE(net.partition(side::b)) << net.error();
    (void)link.client.shutdown(shut::write);  // the FIN that never arrives
    ASSERT_TRUE(sc.wait_closed(close_deadline + 2s));
    const auto took = sc.seen().closed_at - t0;

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got, "reply");
    const close_report& r = sc.seen().report;
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(sc.seen().fired, timeout_kind::close) << r.to_string();
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    EXPECT_TRUE(near_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// Every segment reaching the client is answered with RST; the connection's FIN draws one at once.
TEST(connection_faults, injected_reset_ends_the_close_as_peer_reset) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    served_connection sc(std::move(link.server));
    ASSERT_TRUE(sc.ok());
    ASSERT_TRUE(link.client.send_all("request").has_value());
    for (int i = 0; i < 300 && sc.seen().received_bytes.load() < 7; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(sc.seen().received_bytes.load(), 7U);
    ASSERT_TRUE(net.reset(side::b)) << net.error();

    const auto t0 = steady::now();
    sc.on_loop([](connection& c) { c.close_gracefully(close_deadline); });
    ASSERT_TRUE(sc.wait_closed(close_deadline + 2s));
    const auto took = sc.seen().closed_at - t0;

    const close_report& r = sc.seen().report;
    EXPECT_EQ(r.outcome, close_outcome::peer_reset) << r.to_string();
    EXPECT_TRUE(within_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client.abort();
}

// 5 % loss each way: the 512 KiB request and the 1 MiB reply arrive intact and the close is clean.
// The connection answers once the whole request is in, then closes gracefully at once: the
// reply still buffered is flushed first, and the drain waits for the client's FIN, which comes
// only after the client read the whole reply.
TEST(connection_faults, five_percent_loss_delivers_every_byte_and_closes_clean) {
    constexpr auto limit = 30s;
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tcp_link link = connect_across(net);
    ASSERT_TRUE(link.server.is_open());
    ASSERT_TRUE(net.loss(side::b, 5)) << net.error();

    const std::string request = pattern(512U << 10, 1);
    const auto reply = std::make_shared<std::string>(pattern(1U << 20, 2));
    auto answered = std::make_shared<bool>(false);
    connection_callbacks cb;
    const std::size_t request_size = request.size();
    const auto t0 = steady::now();
    cb.on_data = [reply, answered, request_size, limit](connection& c,
                                                        std::span<const std::byte> /*d*/) {
        // on_data of the wrapper has already counted these bytes.
        if (*answered || c.bytes_received() < request_size) return;
        *answered = true;
        (void)c.write(*reply);
        c.close_gracefully(limit);
    };
    served_connection sc(std::move(link.server), cb);
    ASSERT_TRUE(sc.ok());

    const auto until = deadline::after(limit);
    const transfer_result sent = link.client.send_all(request, until);
    std::string got;
    const transfer_result read = link.client.read_to_end(got, until, 4U << 20);
    const close_report client_report = link.client.close_gracefully(close_within(10s));
    ASSERT_TRUE(sc.wait_closed(limit));
    const auto took = sc.seen().closed_at - t0;

    EXPECT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_EQ(sc.seen().received.size(), request.size());
    EXPECT_EQ(pattern_mismatch(sc.seen().received, 1), std::string_view::npos);
    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got.size(), reply->size());
    EXPECT_EQ(pattern_mismatch(got, 2), std::string_view::npos);
    const close_report& r = sc.seen().report;
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
