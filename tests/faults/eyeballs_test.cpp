// Happy Eyeballs against a broken path: namespace A listens on an IPv6 and an IPv4 address, B
// connects to both with the endpoint-list API (blocking and on an event loop), and nftables in A
// drops the SYNs to one or both. The name-based path is in eyeballs_names_test.cpp.

#include <gtest/gtest.h>

#include <memory>

#include "eyeballs_common.hpp"
#include "orderly/event/connector.hpp"
#include "orderly/net/connect.hpp"
#include "support/fd_count.hpp"

namespace orderly::test::faults {
namespace {

// What the event layer's connect handed over, filled on the loop thread.
struct async_result {
    std::promise<void> promise;
    std::future<void> done = promise.get_future();
    connection_ptr conn;
    error_info error;
    connect_report report;
    steady::time_point at;
};

// The event layer's connect from B; waits (bounded) for the handler.
std::shared_ptr<async_result> connect_async(loop_in_b& lb, const std::vector<endpoint>& to,
                                            const connect_options& opts = {}) {
    auto r = std::make_shared<async_result>();
    lb.sync([&] {
        (void)orderly::connect(
            lb.lp, to, nullptr,
            [r](result<connection_ptr, error_info> c, const connect_report& rep) {
                r->at = steady::now();
                r->report = rep;
                if (c) {
                    r->conn = *c;
                } else {
                    r->error = c.error();
                }
                r->promise.set_value();
            },
            opts);
    });
    EXPECT_EQ(r->done.wait_for(opts.timeout + 5s), std::future_status::ready);
    return r;
}

void close_on_loop(loop_in_b& lb, const std::shared_ptr<async_result>& r) {
    lb.sync([&] {
        if (r->conn && r->conn->is_open()) r->conn->close();
        r->conn.reset();
    });
}

TEST(eyeballs_faults, blocking_connect_falls_back_to_ipv4_after_the_attempt_delay) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    const std::vector<endpoint> to = {srv.v6, srv.v4};
    connect_report report;
    const auto started = steady::now();
    auto c = net.in(side::b, [&] { return orderly::connect(to, {}, &report); });
    const auto took = steady::now() - started;
    ASSERT_TRUE(c) << c.error().message();
    note_timing("connected over IPv4", report.took, 250ms);
    EXPECT_TRUE(fell_back_after_the_attempt_delay(report));
    EXPECT_LT(took, 1s) << "far below the 30 s connect timeout";
    EXPECT_EQ(c->peer_endpoint().value(), srv.v4);
    ASSERT_EQ(report.attempts.size(), 2U);
    EXPECT_EQ(report.winner, 1U);
    EXPECT_EQ(report.attempts[0].outcome, attempt_outcome::cancelled);
    EXPECT_GE(net.fault_hits(side::a), 1) << "the IPv6 SYN must really have been dropped";
    // B holds the winner and nothing else: the IPv6 attempt left no SYN_SENT socket behind.
    const auto in_b = tcp_sockets(net, side::b);
    ASSERT_EQ(in_b.size(), 1U) << joined(in_b);
    EXPECT_EQ(in_b[0].rfind("ESTAB", 0), 0U) << in_b[0];
    EXPECT_NE(in_b[0].find(srv.v4.to_string()), std::string::npos) << in_b[0];
    // The peer saw exactly one connection, on the address that won.
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
    EXPECT_EQ(accepted_count(srv.l6, 100ms), 0);
    (void)c->close();
    EXPECT_EQ(joined(tcp_sockets(net, side::b)).find("ESTAB"), std::string::npos);
}

TEST(eyeballs_faults, async_connect_falls_back_to_ipv4_after_the_attempt_delay) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    loop_in_b lb(net);
    const auto started = steady::now();
    auto r = connect_async(lb, {srv.v6, srv.v4});
    ASSERT_TRUE(r->conn) << r->error.message();
    note_timing("connected over IPv4", r->report.took, 250ms);
    EXPECT_TRUE(fell_back_after_the_attempt_delay(r->report));
    EXPECT_LT(r->at - started, 1s) << "far below the 30 s connect timeout";
    EXPECT_EQ(r->report.winner, 1U);
    EXPECT_EQ(r->report.attempts[0].outcome, attempt_outcome::cancelled);
    const auto in_b = tcp_sockets(net, side::b);
    ASSERT_EQ(in_b.size(), 1U) << joined(in_b);
    EXPECT_NE(in_b[0].find(srv.v4.to_string()), std::string::npos) << in_b[0];
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
    EXPECT_EQ(accepted_count(srv.l6, 100ms), 0);
    close_on_loop(lb, r);
}

TEST(eyeballs_faults, both_families_refused_give_one_error_naming_both) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, false);
    const std::vector<endpoint> to = {srv.v6, srv.v4};
    const std::string want = "connect to 2 addresses: " + srv.v6.to_string() +
                             ": connection refused; " + srv.v4.to_string() + ": connection refused";
    const auto started = steady::now();
    auto c = net.in(side::b, [&] { return orderly::connect(to); });
    ASSERT_FALSE(c);
    EXPECT_LT(steady::now() - started, 200ms) << "a refusal starts the next address at once";
    EXPECT_EQ(c.error().code, std::errc::connection_refused);
    EXPECT_EQ(c.error().message(), want);

    loop_in_b lb(net);
    auto r = connect_async(lb, to);
    EXPECT_FALSE(r->conn);
    EXPECT_EQ(r->error.code, std::errc::connection_refused);
    EXPECT_EQ(r->error.message(), want);
}

TEST(eyeballs_faults, all_black_holed_times_out_at_the_deadline_and_leaves_nothing) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6, srv.v4})) << net.error();
    const std::vector<endpoint> to = {srv.v6, srv.v4};
    connect_options opts;
    opts.timeout = 1s;
    const std::string want = "connect to 2 addresses: " + srv.v6.to_string() + ": timed out; " +
                             srv.v4.to_string() + ": timed out";
    const int fds_before = open_fd_count();
    const auto started = steady::now();
    connect_report report;
    auto c = net.in(side::b, [&] { return orderly::connect(to, opts, &report); });
    const auto took = steady::now() - started;
    ASSERT_FALSE(c);
    note_timing("timed_out", took, opts.timeout);
    EXPECT_TRUE(near_deadline(took, opts.timeout));
    EXPECT_EQ(c.error().code, errc::timed_out);
    EXPECT_EQ(c.error().message(), want);
    EXPECT_EQ(report.attempts.size(), 2U);
    EXPECT_EQ(open_fd_count(), fds_before) << "no descriptor may be left";
    EXPECT_TRUE(tcp_sockets(net, side::b).empty()) << joined(tcp_sockets(net, side::b));

    loop_in_b lb(net);
    lb.sync([] {});  // the loop thread is inside B (it holds its way home open) and running
    const int fds_with_loop = open_fd_count();
    const auto async_started = steady::now();
    auto r = connect_async(lb, to, opts);
    EXPECT_FALSE(r->conn);
    EXPECT_TRUE(near_deadline(r->at - async_started, opts.timeout));
    EXPECT_EQ(r->error.code, errc::timed_out);
    EXPECT_EQ(r->error.message(), want);
    lb.sync([] {});  // the race's own state is released after the handler's batch
    EXPECT_EQ(open_fd_count(), fds_with_loop) << "no descriptor may be left";
    EXPECT_TRUE(tcp_sockets(net, side::b).empty()) << joined(tcp_sockets(net, side::b));
    EXPECT_EQ(accepted_count(srv.l4, 100ms) + accepted_count(srv.l6, 100ms), 0);
}

TEST(eyeballs_faults, delay_zero_waits_for_the_black_hole_before_trying_ipv4) {
    // Sequential, as before Happy Eyeballs: the IPv6 attempt holds the whole deadline.
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    connect_options opts;
    opts.attempt_delay = 0ms;
    opts.timeout = 700ms;
    const std::vector<endpoint> to = {srv.v6, srv.v4};
    const auto started = steady::now();
    auto c = net.in(side::b, [&] { return orderly::connect(to, opts); });
    ASSERT_FALSE(c);
    EXPECT_TRUE(near_deadline(steady::now() - started, opts.timeout));
    EXPECT_EQ(c.error().code, errc::timed_out);
    EXPECT_NE(c.error().message().find("1 more address not tried"), std::string::npos)
        << c.error().message();
    EXPECT_EQ(accepted_count(srv.l4, 100ms), 0);
}

TEST(eyeballs_faults, a_shorter_attempt_delay_is_honoured) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    connect_options opts;
    opts.attempt_delay = 100ms;
    const std::vector<endpoint> to = {srv.v6, srv.v4};
    connect_report report;
    auto c = net.in(side::b, [&] { return orderly::connect(to, opts, &report); });
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(report.attempts.size(), 2U);
    EXPECT_GE(report.attempts[1].started, 100ms);
    EXPECT_LE(report.attempts[1].started, 150ms);
    EXPECT_LE(report.took, 200ms);
}

}  // namespace
}  // namespace orderly::test::faults
