// Fault injection over TLS, blocking layer: tls_stream::close_gracefully() on the server's side
// (namespace A) while the network towards a tls_stream client (namespace B, on a peer thread)
// fails. The same four cases as blocking_test.cpp, with the TLS end (close_notify both ways)
// between the data and the TCP end.

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "fault_common.hpp"
#include "tls_fault_common.hpp"

namespace orderly::test::faults {
namespace {

constexpr auto close_deadline = 1s;

// Both ends of a TCP link across the namespaces, handshaken (the client on a thread, verifying
// the name "localhost").
struct tls_link {
    std::optional<tls_stream> client;  // in B
    std::optional<tls_stream> server;  // in A
};

tls_link handshake_across(netns_pair& net, const tls_setup& tls) {
    tls_link out;
    tcp_link link = connect_across(net);
    if (!link.server.is_open() || !link.client.is_open()) return out;
    auto c = tls_stream::client(std::move(link.client), tls.client, "localhost");
    auto s = tls_stream::server(std::move(link.server), tls.server);
    EXPECT_TRUE(c.has_value() && s.has_value());
    if (!c || !s) return out;
    result<void, error_info> client_hs;
    std::thread peer([&] { client_hs = c->handshake(deadline::after(5s)); });
    const auto server_hs = s->handshake(deadline::after(5s));
    peer.join();
    EXPECT_TRUE(server_hs.has_value()) << (server_hs ? "" : server_hs.error().message());
    EXPECT_TRUE(client_hs.has_value()) << (client_hs ? "" : client_hs.error().message());
    if (!server_hs || !client_hs) return out;
    out.client.emplace(std::move(*c));
    out.server.emplace(std::move(*s));
    return out;
}

// The partition comes while the server sends 16 MiB and the client decrypts them. As over plain
// TCP the write notices first: send_all() ends timed_out at its deadline with a record possibly
// half in the kernel. The close that follows cannot get close_notify (or the FIN behind it) out,
// so it ends timed_out at its own deadline and aborts.
TEST(tls_blocking_faults, partition_during_exchange_times_out_the_write_then_the_close) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tls_setup tls;
    tls_link link = handshake_across(net, tls);
    ASSERT_TRUE(link.server && link.client);

    std::atomic<bool> partitioned{false};
    std::atomic<std::size_t> got{0};
    std::thread reader([&] {
        got = tls_read_at_least(*link.client, 256U << 10, deadline::after(5s));
        partitioned = net.partition(side::b);
    });
    const std::string body = pattern(16U << 20);
    const auto t0 = steady::now();
    const transfer_result sent = link.server->send_all(body, deadline::after(close_deadline));
    const auto write_took = steady::now() - t0;
    reader.join();

    const auto t1 = steady::now();
    const close_report r = link.server->close_gracefully(tls_close_within(close_deadline));
    const auto close_took = steady::now() - t1;

    EXPECT_GE(got.load(), 256U << 10);
    EXPECT_TRUE(partitioned.load()) << net.error();
    EXPECT_EQ(sent.error(), make_error_code(errc::timed_out));
    EXPECT_LT(sent.bytes, body.size());
    EXPECT_TRUE(near_deadline(write_took, close_deadline));
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_FALSE(r.peer_eof);
    ASSERT_TRUE(r.tls.has_value()) << r.to_string();
    EXPECT_FALSE(r.tls->close_notify_received);
    EXPECT_TRUE(near_deadline(close_took, close_deadline));
    note_timing("write timed_out", write_took, close_deadline);
    note_timing(to_string(r.outcome), close_took, close_deadline);
    note_report(r);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client->abort();
}

// Our close_notify and FIN reach the client (its read ends at the close_notify), then the
// partition swallows the client's close_notify and FIN: the drain waits for them until the
// deadline, and the report says so (tls->wait == deadline).
TEST(tls_blocking_faults, partition_during_drain_times_out_at_the_deadline) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tls_setup tls;
    tls_link link = handshake_across(net, tls);
    ASSERT_TRUE(link.server && link.client);
    ASSERT_TRUE(link.server->send_all("reply").has_value());

    std::string got;
    transfer_result read;
    std::atomic<bool> partitioned{false};
    std::thread peer([&] {
        read = link.client->read_to_end(got, deadline::after(3s));
        partitioned = net.partition(side::b);
        (void)link.client->shutdown(shut::write);  // close_notify + FIN that never arrive
    });
    const auto t0 = steady::now();
    const close_report r = link.server->close_gracefully(tls_close_within(close_deadline));
    const auto took = steady::now() - t0;
    peer.join();

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got, "reply");
    EXPECT_TRUE(link.client->close_notify_received());
    EXPECT_TRUE(partitioned.load()) << net.error();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_TRUE(r.fin_sent);
    EXPECT_FALSE(r.peer_eof);
    ASSERT_TRUE(r.tls.has_value()) << r.to_string();
    EXPECT_TRUE(r.tls->close_notify_sent);
    EXPECT_FALSE(r.tls->close_notify_received);
    EXPECT_EQ(r.tls->wait, close_notify_wait::deadline) << to_string(r.tls->wait);
    EXPECT_TRUE(near_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);
    note_report(r);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client->abort();
}

// After the request, every segment reaching the client is answered with RST. Our close_notify is
// the next segment, so the drain sees ECONNRESET at once: peer_reset.
TEST(tls_blocking_faults, injected_reset_ends_the_close_as_peer_reset) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tls_setup tls;
    tls_link link = handshake_across(net, tls);
    ASSERT_TRUE(link.server && link.client);
    ASSERT_TRUE(link.client->send_all("request", deadline::after(3s)).has_value());
    std::string req;
    ASSERT_EQ(tls_read_at_least(*link.server, 7, deadline::after(3s), &req), 7U);
    ASSERT_TRUE(net.reset(side::b)) << net.error();

    const auto t0 = steady::now();
    const close_report r = link.server->close_gracefully(tls_close_within(close_deadline));
    const auto took = steady::now() - t0;

    EXPECT_EQ(r.outcome, close_outcome::peer_reset) << r.to_string();
    EXPECT_TRUE(within_deadline(took, close_deadline));
    note_timing(to_string(r.outcome), took, close_deadline);
    note_report(r);

    EXPECT_GT(net.fault_hits(side::b), 0) << "the fault rules never matched";
    (void)net.heal(side::b);
    (void)link.client->abort();
}

// 5 % loss each way: a 512 KiB request and a 1 MiB reply arrive byte for byte, and both ends are
// clean with close_notify both ways. The client reads the reply up to the server's close_notify,
// then closes gracefully itself; only then do its close_notify and FIN reach the server's drain.
TEST(tls_blocking_faults, five_percent_loss_delivers_every_byte_and_closes_clean) {
    constexpr auto limit = 30s;
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    tls_setup tls;
    tls_link link = handshake_across(net, tls);
    ASSERT_TRUE(link.server && link.client);
    ASSERT_TRUE(net.loss(side::b, 5)) << net.error();

    const std::string request = pattern(512U << 10, 1);
    const std::string reply = pattern(1U << 20, 2);
    const auto until = deadline::after(limit);
    std::string reply_got;
    transfer_result client_sent;
    transfer_result client_read;
    close_report client_report;
    std::thread client([&] {
        client_sent = link.client->send_all(request, until);
        client_read = link.client->read_to_end(reply_got, until, 4U << 20);
        client_report = link.client->close_gracefully(tls_close_within(10s));
    });
    const auto t0 = steady::now();
    std::string request_got;
    (void)tls_read_at_least(*link.server, request.size(), until, &request_got);
    const transfer_result sent = link.server->send_all(reply, until);
    const close_report r = link.server->close_gracefully(tls_close_within(until.remaining()));
    const auto took = steady::now() - t0;
    client.join();

    EXPECT_TRUE(client_sent.has_value()) << client_sent.error().message();
    EXPECT_EQ(request_got.size(), request.size());
    EXPECT_EQ(pattern_mismatch(request_got, 1), std::string_view::npos);
    EXPECT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_TRUE(client_read.has_value()) << client_read.error().message();
    EXPECT_EQ(reply_got.size(), reply.size());
    EXPECT_EQ(pattern_mismatch(reply_got, 2), std::string_view::npos);
    for (const close_report* e : {&r, static_cast<const close_report*>(&client_report)}) {
        EXPECT_EQ(e->outcome, close_outcome::clean) << e->to_string();
        ASSERT_TRUE(e->tls.has_value()) << e->to_string();
        EXPECT_TRUE(e->tls->close_notify_sent && e->tls->close_notify_received) << e->to_string();
        EXPECT_EQ(e->tls->wait, close_notify_wait::received);
        EXPECT_TRUE(e->fin_sent && e->peer_eof) << e->to_string();
    }
    EXPECT_TRUE(within_deadline(took, limit));
    const long long dropped = net.fault_hits(side::b);
    EXPECT_GT(dropped, 0) << "the loss rules dropped nothing";
    note_timing(to_string(r.outcome), took, limit);
    note_report(r);
    note_dropped(dropped);
}

}  // namespace
}  // namespace orderly::test::faults
