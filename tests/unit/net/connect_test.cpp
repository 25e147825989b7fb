#include "orderly/net/connect.hpp"

#include <gtest/gtest.h>

#include "orderly/core/errc.hpp"
#include "orderly/net/eyeballs.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(connect_helper, connects_by_name) {
    auto l = orderly::listen("127.0.0.1:0");
    ASSERT_TRUE(l) << l.error().message();
    const std::string where = "localhost:" + std::to_string(l->local_endpoint().port());
    auto c = orderly::connect(where, 5s);
    ASSERT_TRUE(c) << c.error().message();
    auto s = l->accept(deadline::after(5s));
    EXPECT_TRUE(s);
}

TEST(connect_helper, refused_message_names_target) {
    endpoint free_port;
    {
        auto l = orderly::listen("127.0.0.1:0");
        ASSERT_TRUE(l);
        free_port = l->local_endpoint();
    }
    auto c = orderly::connect(free_port.to_string(), 5s);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, std::errc::connection_refused);
    EXPECT_NE(c.error().message().find(free_port.to_string()), std::string::npos)
        << c.error().message();
}

TEST(connect_helper, malformed_and_unresolvable) {
    auto bad = orderly::connect("127.0.0.1:notaport", 1s);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("notaport"), std::string::npos) << bad.error().message();
    auto none = orderly::connect("nosuch.invalid:80", 5s);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, errc::resolve);
    EXPECT_NE(none.error().message().find("nosuch.invalid"), std::string::npos);
}

// A loopback port nobody listens on: bound, then released.
endpoint closed_port(const endpoint& any_port) {
    auto l = listener::listen(any_port);
    EXPECT_TRUE(l.has_value());
    return l ? l->local_endpoint() : endpoint{};
}

TEST(connect_race, a_refused_address_hands_over_to_the_next_at_once) {
    auto l = orderly::listen("127.0.0.1:0");
    ASSERT_TRUE(l) << l.error().message();
    const std::vector<endpoint> to = {closed_port(endpoint::ipv4_loopback(0)), l->local_endpoint()};
    connect_report report;
    const auto started = clock::now();
    auto c = orderly::connect(to, {}, &report);
    const auto took = clock::now() - started;
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_LT(took, 200ms) << "the refusal must not wait for the 250 ms attempt delay";
    EXPECT_EQ(c->peer_endpoint().value(), l->local_endpoint());
    ASSERT_EQ(report.attempts.size(), 2U);
    EXPECT_EQ(report.winner, 1U);
    EXPECT_EQ(report.attempts[0].outcome, attempt_outcome::failed);
    EXPECT_EQ(report.attempts[0].error, std::errc::connection_refused);
    EXPECT_NE(report.to_string().find("connected to " + l->local_endpoint().to_string()),
              std::string::npos)
        << report.to_string();
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_FALSE(l->accept(deadline::after(50ms))) << "exactly one connection";
}

TEST(connect_race, every_address_refused_gives_one_error_naming_each) {
    std::vector<endpoint> to = {closed_port(endpoint::ipv4_loopback(0))};
    if (test::ipv6_available()) to.insert(to.begin(), closed_port(endpoint::ipv6_loopback(0)));
    to.push_back(closed_port(endpoint::ipv4_loopback(0)));
    connect_report report;
    auto c = orderly::connect(to, {}, &report);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, std::errc::connection_refused);
    std::string want = "connect to " + std::to_string(to.size()) + " addresses: ";
    for (std::size_t i = 0; i < to.size(); ++i)
        want += (i > 0 ? "; " : "") + to[i].to_string() + ": connection refused";
    EXPECT_EQ(c.error().message(), want);
    EXPECT_FALSE(report.winner);
    EXPECT_EQ(report.attempts.size(), to.size());
}

TEST(connect_race, the_report_names_the_winner_of_a_literal) {
    auto l = orderly::listen("127.0.0.1:0");
    ASSERT_TRUE(l);
    const std::string where = l->local_endpoint().to_string();
    connect_report report;
    auto c = orderly::connect(where, {}, &report);
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(report.attempts.size(), 1U);
    EXPECT_EQ(report.winner, 0U);
    EXPECT_EQ(report.first_answer, clock::duration::zero()) << "a literal needs no lookup";
    EXPECT_EQ(report.to_string().rfind("connected to " + where + " after ", 0), 0U)
        << report.to_string();
}

TEST(connect_race, options_out_of_range_fail_before_any_socket) {
    connect_options o;
    o.attempt_delay = 50ms;
    auto c = orderly::connect("127.0.0.1:1", o);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, errc::invalid_argument);
    EXPECT_NE(c.error().message().find("100 ms to 2 s"), std::string::npos) << c.error().message();
    const std::vector<endpoint> none;
    auto e = orderly::connect(none);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::invalid_argument);
}

TEST(connect_race, sequential_mode_still_moves_on_after_a_refusal) {
    auto l = orderly::listen("127.0.0.1:0");
    ASSERT_TRUE(l);
    const std::vector<endpoint> to = {closed_port(endpoint::ipv4_loopback(0)), l->local_endpoint()};
    connect_options o;
    o.attempt_delay = 0ms;
    auto c = orderly::connect(to, o);
    ASSERT_TRUE(c) << c.error().message();
}

TEST(connect_race, a_unix_path_in_a_list) {
    const std::string path = test::temp_socket_path();
    auto l = orderly::listen("unix:" + path);
    ASSERT_TRUE(l) << l.error().message();
    const std::vector<endpoint> to = {l->local_endpoint()};
    auto c = orderly::connect(to);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE(l->accept(deadline::after(5s)));
}

TEST(connect_helper, listen_dual_stack_accepts_ipv4_clients) {
    if (!test::ipv6_available()) GTEST_SKIP() << "IPv6 loopback is not available here";
    listen_options opts;
    opts.v6_only = false;
    auto l = orderly::listen("[::]:0", opts);
    ASSERT_TRUE(l) << l.error().message();
    const auto port = l->local_endpoint().port();
    auto c4 = orderly::connect("127.0.0.1:" + std::to_string(port), 5s);
    ASSERT_TRUE(c4) << c4.error().message();
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->peer_endpoint()->host(), "::ffff:127.0.0.1");
}

TEST(connect_helper, listen_on_any_address) {
    // "*:0" and ":0" bind the system's first passive address (0.0.0.0 or ::); "0.0.0.0:0" is
    // IPv4 and must take a client on 127.0.0.1.
    for (const char* where : {"*:0", ":0", "0.0.0.0:0"}) {
        auto l = orderly::listen(where);
        ASSERT_TRUE(l) << where << ": " << l.error().message();
        EXPECT_NE(l->local_endpoint().port(), 0) << where;
        EXPECT_TRUE(l->local_endpoint().host() == "0.0.0.0" || l->local_endpoint().host() == "::")
            << where << " bound " << l->local_endpoint().to_string();
    }
    auto l = orderly::listen("0.0.0.0:0");
    ASSERT_TRUE(l);
    auto c = orderly::connect("127.0.0.1:" + std::to_string(l->local_endpoint().port()), 5s);
    EXPECT_TRUE(c) << c.error().message();
}

TEST(connect_helper, unix_path_text) {
    const std::string path = test::temp_socket_path();
    auto l = orderly::listen("unix:" + path);
    ASSERT_TRUE(l) << l.error().message();
    auto c = orderly::connect("unix:" + path, 5s);
    ASSERT_TRUE(c) << c.error().message();
    auto s = l->accept(deadline::after(5s));
    EXPECT_TRUE(s);
}

}  // namespace
}  // namespace orderly
