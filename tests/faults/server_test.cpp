// Fault injection against the event server: server::stop_gracefully() with its one connection's
// client behind a failing network (server in namespace A, client in B).

#include "orderly/event/server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "fault_common.hpp"

namespace orderly::test::faults {
namespace {

constexpr auto stop_deadline = 1s;

// Loop-thread state of the one connection, read by the test after stop_gracefully() returned
// (the loop threads are joined by then).
struct server_state {
    std::atomic<std::size_t> received{0};
    std::atomic<bool> answered{false};
    std::string request;
};

struct started_server {
    std::unique_ptr<server> srv;
    stream_socket client;
};

// Starts a one-thread server inside A, connects a client from B and waits until it is accepted.
started_server start_across(netns_pair& net, connection_callbacks cb) {
    started_server s;
    server_options opts;
    opts.threads = 1;
    auto srv = net.in(side::a, [&] { return server::start(net.address(side::a, 0), cb, opts); });
    EXPECT_TRUE(srv.has_value()) << (srv ? "" : srv.error().message());
    if (!srv) return s;
    s.srv = std::move(*srv);
    auto c = net.in(side::b, [&] {
        return stream_socket::connect(net.address(side::a, s.srv->local_endpoint().port()), 5s);
    });
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
    if (!c) return s;
    s.client = std::move(*c);
    for (int i = 0; i < 500 && s.srv->accepted() == 0; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(s.srv->accepted(), 1U);
    return s;
}

// The server is sending 16 MiB and the client reading when the partition comes. The stop asks the
// connection to flush, FIN and drain; the flush cannot finish, so the connection's close timer
// (armed with the stop's deadline) aborts it: timed_out at the deadline, and the summary says the
// deadline forced it.
TEST(server_faults, partition_during_exchange_times_out_the_stop) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    const auto body = std::make_shared<std::string>(pattern(16U << 20));
    connection_callbacks cb;
    cb.on_open = [body](connection& c) { (void)c.write(*body); };
    started_server s = start_across(net, cb);
    ASSERT_TRUE(s.client.is_open());

    ASSERT_GE(read_at_least(s.client, 256U << 10, deadline::after(5s)), 256U << 10);
    ASSERT_TRUE(net.partition(side::b)) << net.error();
    const auto t0 = steady::now();
    const stop_summary sum = s.srv->stop_gracefully(deadline::after(stop_deadline));
    const auto took = steady::now() - t0;

    EXPECT_EQ(sum.connections, 1U) << sum.to_string();
    EXPECT_EQ(sum.count(close_outcome::timed_out), 1U) << sum.to_string();
    EXPECT_TRUE(sum.deadline_reached);
    EXPECT_LT(sum.bytes_sent, body->size());
    EXPECT_TRUE(near_deadline(took, stop_deadline)) << sum.to_string();
    note_timing("timed_out", took, stop_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)s.client.abort();
}

// The stop's FIN reaches the client, which reads EOF; then the partition eats the client's FIN.
TEST(server_faults, partition_during_drain_times_out_the_stop) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    connection_callbacks cb;
    cb.on_open = [](connection& c) { (void)c.write("hello"); };
    started_server s = start_across(net, cb);
    ASSERT_TRUE(s.client.is_open());

    std::string got;
    transfer_result read;
    std::atomic<bool> partitioned{false};
    std::thread peer([&] {
        read = s.client.read_to_end(got, deadline::after(3s));
        partitioned = net.partition(side::b);
        (void)s.client.shutdown(shut::write);  // the FIN that never arrives
    });
    const auto t0 = steady::now();
    const stop_summary sum = s.srv->stop_gracefully(deadline::after(stop_deadline));
    const auto took = steady::now() - t0;
    peer.join();

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got, "hello");
    EXPECT_TRUE(partitioned.load()) << net.error();
    EXPECT_EQ(sum.count(close_outcome::timed_out), 1U) << sum.to_string();
    EXPECT_TRUE(sum.deadline_reached);
    EXPECT_TRUE(near_deadline(took, stop_deadline)) << sum.to_string();
    note_timing("timed_out", took, stop_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)s.client.abort();
}

// The client's side answers every segment with RST; the stop's FIN draws one at once.
TEST(server_faults, injected_reset_ends_the_stop_as_peer_reset) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    auto state = std::make_shared<server_state>();
    connection_callbacks cb;
    cb.on_data = [state](connection&, std::span<const std::byte> d) {
        state->received += d.size();
    };
    started_server s = start_across(net, cb);
    ASSERT_TRUE(s.client.is_open());
    ASSERT_TRUE(s.client.send_all("request").has_value());
    for (int i = 0; i < 300 && state->received.load() < 7; ++i)
        std::this_thread::sleep_for(10ms);
    ASSERT_EQ(state->received.load(), 7U);
    ASSERT_TRUE(net.reset(side::b)) << net.error();

    const auto t0 = steady::now();
    const stop_summary sum = s.srv->stop_gracefully(deadline::after(stop_deadline));
    const auto took = steady::now() - t0;

    EXPECT_EQ(sum.count(close_outcome::peer_reset), 1U) << sum.to_string();
    EXPECT_FALSE(sum.deadline_reached);
    EXPECT_TRUE(within_deadline(took, stop_deadline)) << sum.to_string();
    note_timing("peer_reset", took, stop_deadline);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)s.client.abort();
}

// 5 % loss each way. The connection answers a 512 KiB request with a 1 MiB reply and the stop
// begins while most of the reply is still on its way: every byte still arrives, in order, and the
// stop ends clean once the client, having read it all, sends its FIN.
TEST(server_faults, five_percent_loss_delivers_every_byte_and_stops_clean) {
    constexpr auto limit = 30s;
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    auto state = std::make_shared<server_state>();
    const auto reply = std::make_shared<std::string>(pattern(1U << 20, 2));
    const std::string request = pattern(512U << 10, 1);
    const std::size_t request_size = request.size();
    connection_callbacks cb;
    cb.on_data = [state, reply, request_size](connection& c, std::span<const std::byte> d) {
        state->request.append(reinterpret_cast<const char*>(d.data()), d.size());
        state->received += d.size();
        if (state->request.size() >= request_size && !state->answered.load()) {
            (void)c.write(*reply);
            state->answered = true;
        }
    };
    started_server s = start_across(net, cb);
    ASSERT_TRUE(s.client.is_open());
    ASSERT_TRUE(net.loss(side::b, 5)) << net.error();

    const auto until = deadline::after(limit);
    const auto t0 = steady::now();
    std::string got;
    transfer_result sent;
    transfer_result read;
    close_report client_report;
    std::thread client([&] {
        sent = s.client.send_all(request, until);
        read = s.client.read_to_end(got, until, 4U << 20);
        client_report = s.client.close_gracefully(close_within(10s));
    });
    for (int i = 0; i < 1500 && !state->answered.load(); ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(state->answered.load());
    const stop_summary sum = s.srv->stop_gracefully(until);
    const auto took = steady::now() - t0;
    client.join();

    EXPECT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_EQ(state->request.size(), request.size());
    EXPECT_EQ(pattern_mismatch(state->request, 1), std::string_view::npos);
    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got.size(), reply->size());
    EXPECT_EQ(pattern_mismatch(got, 2), std::string_view::npos);
    EXPECT_EQ(sum.count(close_outcome::clean), 1U) << sum.to_string();
    EXPECT_FALSE(sum.deadline_reached);
    EXPECT_EQ(client_report.outcome, close_outcome::clean) << client_report.to_string();
    EXPECT_TRUE(within_deadline(took, limit)) << sum.to_string();
    const long long dropped = net.fault_hits(side::b);
    EXPECT_GT(dropped, 0) << "the loss rules dropped nothing";
    note_timing("clean", took, limit);
    note_dropped(dropped);
}

}  // namespace
}  // namespace orderly::test::faults
