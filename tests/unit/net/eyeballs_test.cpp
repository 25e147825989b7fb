// The Happy Eyeballs schedule on its own: made-up times, no sockets, no lookups.

#include "orderly/net/eyeballs.hpp"

#include <gtest/gtest.h>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

const clock::time_point t0 = clock::time_point{} + std::chrono::hours(1);

endpoint ep(std::string_view text) {
    return endpoint::parse(text).value();
}

std::vector<std::string> texts(const std::vector<endpoint>& v) {
    std::vector<std::string> out;
    out.reserve(v.size());
    for (const auto& e : v)
        out.push_back(e.to_string());
    return out;
}

std::error_code refused() {
    return std::make_error_code(std::errc::connection_refused);
}

// Runs next() at `now` and returns the address it started, or "" when none was due.
std::string start_at(eyeballs& e, clock::time_point now) {
    auto i = e.next(now);
    return i ? e.address(*i).to_string() : std::string();
}

TEST(eyeballs_options, ranges_follow_rfc_8305) {
    EXPECT_TRUE(check_connect_options({}));
    for (auto d : {0ms, 100ms, 250ms, 2000ms}) {
        connect_options o;
        o.attempt_delay = d;
        EXPECT_TRUE(check_connect_options(o)) << d.count();
    }
    for (auto d : {1ms, 99ms, 2001ms}) {
        connect_options o;
        o.attempt_delay = d;
        auto r = check_connect_options(o);
        ASSERT_FALSE(r) << d.count();
        EXPECT_EQ(r.error().code, errc::invalid_argument);
        EXPECT_NE(r.error().detail.find("100 ms to 2 s"), std::string::npos) << r.error().detail;
        EXPECT_NE(r.error().detail.find("use 0"), std::string::npos) << r.error().detail;
    }
    connect_options o;
    o.attempt_delay = 99ms;
    EXPECT_NE(check_connect_options(o).error().detail.find("99 ms"), std::string::npos);
    o = {};
    o.first_family_count = 0;
    EXPECT_FALSE(check_connect_options(o));
    o = {};
    o.timeout = 0s;
    EXPECT_TRUE(check_connect_options(o)) << "a deadline already passed, not a bad value";
    o = {};
    o.resolution_delay = 3s;
    EXPECT_FALSE(check_connect_options(o));
}

TEST(eyeballs_interleave, alternates_families_after_the_first_family_count) {
    const std::vector<endpoint> in = {ep("[fd00::1]:80"), ep("[fd00::2]:80"), ep("[fd00::3]:80"),
                                      ep("10.0.0.1:80"), ep("10.0.0.2:80")};
    EXPECT_EQ(texts(interleave_families(in, 1)),
              (std::vector<std::string>{"[fd00::1]:80", "10.0.0.1:80", "[fd00::2]:80",
                                        "10.0.0.2:80", "[fd00::3]:80"}));
    EXPECT_EQ(texts(interleave_families(in, 2)),
              (std::vector<std::string>{"[fd00::1]:80", "[fd00::2]:80", "10.0.0.1:80",
                                        "[fd00::3]:80", "10.0.0.2:80"}));
    EXPECT_EQ(texts(interleave_families(in, 9)),
              (std::vector<std::string>{"[fd00::1]:80", "[fd00::2]:80", "[fd00::3]:80",
                                        "10.0.0.1:80", "10.0.0.2:80"}));
}

TEST(eyeballs_interleave, first_address_picks_the_family_and_duplicates_go) {
    const std::vector<endpoint> in = {ep("10.0.0.1:80"), ep("10.0.0.1:80"), ep("10.0.0.2:80"),
                                      ep("[fd00::1]:80")};
    EXPECT_EQ(texts(interleave_families(in)),
              (std::vector<std::string>{"10.0.0.1:80", "[fd00::1]:80", "10.0.0.2:80"}));
    const std::vector<endpoint> one_family = {ep("10.0.0.2:80"), ep("10.0.0.1:80")};
    EXPECT_EQ(texts(interleave_families(one_family)),
              (std::vector<std::string>{"10.0.0.2:80", "10.0.0.1:80"}));
    EXPECT_TRUE(interleave_families({}).empty());
}

TEST(eyeballs, starts_the_first_at_once_and_the_next_after_the_attempt_delay) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80")};
    eyeballs e({}, t0, "localhost:80");
    e.add_addresses(addrs, t0);
    EXPECT_EQ(start_at(e, t0), "[::1]:80");
    EXPECT_EQ(start_at(e, t0), "");
    EXPECT_EQ(e.wake_at(), t0 + 250ms);
    EXPECT_EQ(start_at(e, t0 + 249ms), "");
    EXPECT_EQ(start_at(e, t0 + 250ms), "127.0.0.1:80");
    EXPECT_EQ(e.in_flight(), 2U);
    EXPECT_EQ(e.wake_at(), t0 + 30s) << "only the deadline is left";
    EXPECT_FALSE(e.done());
}

TEST(eyeballs, a_given_list_keeps_its_first_family_first) {
    const std::vector<endpoint> addrs = {ep("127.0.0.1:80"), ep("127.0.0.2:80"), ep("[::1]:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    EXPECT_EQ(start_at(e, t0), "127.0.0.1:80");
    EXPECT_EQ(start_at(e, t0 + 250ms), "[::1]:80");
    EXPECT_EQ(start_at(e, t0 + 500ms), "127.0.0.2:80");
}

TEST(eyeballs, a_failure_starts_the_next_address_at_once) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80"), ep("[::2]:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:80");
    e.failed(0, refused(), t0 + 10ms);
    EXPECT_LE(e.wake_at(), t0 + 10ms);
    EXPECT_EQ(start_at(e, t0 + 10ms), "127.0.0.1:80");
    // While attempt 1 is still in flight, a failure of 1 starts 2 before 1's delay is over.
    EXPECT_EQ(start_at(e, t0 + 20ms), "");
    e.failed(1, refused(), t0 + 30ms);
    EXPECT_EQ(start_at(e, t0 + 30ms), "[::2]:80");
}

TEST(eyeballs, failure_of_an_earlier_attempt_also_starts_the_next) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80"), ep("[::2]:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:80");
    ASSERT_EQ(start_at(e, t0 + 250ms), "127.0.0.1:80");
    e.failed(0, refused(), t0 + 300ms);  // the black hole's neighbour gives up
    EXPECT_EQ(start_at(e, t0 + 300ms), "[::2]:80");
}

TEST(eyeballs, delay_zero_tries_one_address_at_a_time) {
    connect_options o;
    o.attempt_delay = 0ms;
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80")};
    eyeballs e(o, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:80");
    EXPECT_EQ(e.wake_at(), t0 + 30s);
    EXPECT_EQ(start_at(e, t0 + 29s), "");
    e.failed(0, refused(), t0 + 29s);
    EXPECT_EQ(start_at(e, t0 + 29s), "127.0.0.1:80");
}

TEST(eyeballs, first_success_wins_and_cancels_the_rest) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80"), ep("[::2]:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:80");
    ASSERT_EQ(start_at(e, t0 + 250ms), "127.0.0.1:80");
    EXPECT_TRUE(e.connected(1, t0 + 251ms));
    EXPECT_TRUE(e.done());
    EXPECT_EQ(e.winner(), 1U);
    EXPECT_EQ(e.in_flight(), 0U);
    EXPECT_EQ(start_at(e, t0 + 600ms), "") << "nothing starts after the race is won";
    EXPECT_EQ(e.wake_at(), clock::time_point::max());
    const connect_report& r = e.report();
    EXPECT_EQ(r.attempts[0].outcome, attempt_outcome::cancelled);
    EXPECT_EQ(r.attempts[1].outcome, attempt_outcome::connected);
    EXPECT_EQ(r.took, 251ms);
    EXPECT_EQ(r.untried, 1U);
    EXPECT_EQ(r.to_string(),
              "connected to 127.0.0.1:80 after 251 ms (attempt 2 of 2; [::1]:80 cancelled after "
              "251 ms)");
}

TEST(eyeballs, two_completions_in_one_batch_give_one_winner) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:80");
    ASSERT_EQ(start_at(e, t0 + 250ms), "127.0.0.1:80");
    EXPECT_TRUE(e.connected(0, t0 + 300ms));
    EXPECT_FALSE(e.connected(1, t0 + 300ms)) << "the second must be aborted by the driver";
    EXPECT_FALSE(e.connected(0, t0 + 300ms)) << "a repeated event changes nothing";
    EXPECT_EQ(e.winner(), 0U);
    EXPECT_EQ(e.report().attempts[1].outcome, attempt_outcome::lost_tie);
    e.failed(1, refused(), t0 + 301ms);  // late noise from the driver is ignored
    EXPECT_EQ(e.report().attempts[1].outcome, attempt_outcome::lost_tie);
}

TEST(eyeballs, every_address_refused_gives_one_error_naming_each) {
    const std::vector<endpoint> addrs = {ep("[::1]:8080"), ep("127.0.0.1:8080")};
    eyeballs e({}, t0, "localhost:8080");
    e.add_addresses(addrs, t0);
    ASSERT_EQ(start_at(e, t0), "[::1]:8080");
    e.failed(0, refused(), t0 + 1ms);
    ASSERT_EQ(start_at(e, t0 + 1ms), "127.0.0.1:8080");
    EXPECT_FALSE(e.done());
    e.failed(1, refused(), t0 + 2ms);
    ASSERT_TRUE(e.done());
    EXPECT_FALSE(e.winner());
    EXPECT_EQ(e.error().code, std::errc::connection_refused);
    EXPECT_EQ(e.error().detail,
              "connect to localhost:8080: [::1]:8080: connection refused; 127.0.0.1:8080: "
              "connection refused");
    EXPECT_EQ(e.report().failures(),
              "[::1]:8080: connection refused; 127.0.0.1:8080: connection refused");
}

TEST(eyeballs, mixed_errors_report_the_refusal_and_name_every_reason) {
    const std::vector<endpoint> addrs = {ep("[fd00::1]:80"), ep("10.0.0.1:80")};
    eyeballs e({}, t0, "dual.test:80");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    e.failed(0, std::make_error_code(std::errc::network_unreachable), t0);
    ASSERT_TRUE(e.next(t0));
    e.failed(1, refused(), t0 + 1ms);
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, std::errc::connection_refused);
    EXPECT_EQ(e.error().detail,
              "connect to dual.test:80: [fd00::1]:80: network is unreachable; 10.0.0.1:80: "
              "connection refused");
}

TEST(eyeballs, one_literal_address_is_named_once) {
    const std::vector<endpoint> addrs = {ep("127.0.0.1:1")};
    eyeballs e({}, t0, "127.0.0.1:1");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    e.failed(0, refused(), t0);
    EXPECT_EQ(e.error().detail, "connect to 127.0.0.1:1: connection refused");
}

TEST(eyeballs, the_deadline_times_out_every_attempt_in_flight) {
    connect_options o;
    o.timeout = 1s;
    const std::vector<endpoint> addrs = {ep("[::1]:8080"), ep("127.0.0.1:8080")};
    eyeballs e(o, t0, "localhost:8080");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    ASSERT_TRUE(e.next(t0 + 250ms));
    EXPECT_EQ(e.wake_at(), t0 + 1s);
    EXPECT_FALSE(e.next(t0 + 999ms));
    EXPECT_FALSE(e.done());
    EXPECT_FALSE(e.next(t0 + 1s));
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::timed_out);
    EXPECT_EQ(e.error().detail,
              "connect to localhost:8080: [::1]:8080: timed out; 127.0.0.1:8080: timed out");
    EXPECT_EQ(e.report().attempts[1].outcome, attempt_outcome::timed_out);
    EXPECT_EQ(e.report().took, 1s);
    EXPECT_FALSE(e.connected(1, t0 + 1s)) << "a completion after the deadline is not a winner";
    EXPECT_EQ(e.report().to_string(),
              "not connected after 1000 ms: [::1]:8080: timed out; 127.0.0.1:8080: timed out");
}

TEST(eyeballs, the_deadline_counts_addresses_never_tried) {
    connect_options o;
    o.timeout = 300ms;
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80"), ep("[::2]:80")};
    eyeballs e(o, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    ASSERT_TRUE(e.next(t0 + 250ms));
    EXPECT_EQ(e.wake_at(), t0 + 300ms) << "the deadline comes before the third start";
    EXPECT_FALSE(e.next(t0 + 300ms));
    EXPECT_EQ(e.report().untried, 1U);
    EXPECT_EQ(e.error().detail,
              "connect to x:80: [::1]:80: timed out; 127.0.0.1:80: timed out; 1 more address "
              "not tried");
}

TEST(eyeballs, an_a_answer_first_waits_for_aaaa_up_to_the_resolution_delay) {
    eyeballs e({}, t0, "dual.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    EXPECT_EQ(start_at(e, t0), "");
    EXPECT_EQ(e.wake_at(), t0 + 30s);
    e.answer(address_family::ipv4, std::vector<endpoint>{ep("10.0.0.1:80")}, t0 + 5ms);
    EXPECT_EQ(start_at(e, t0 + 5ms), "");
    EXPECT_EQ(e.wake_at(), t0 + 55ms);
    e.answer(address_family::ipv6, std::vector<endpoint>{ep("[fd00::1]:80")}, t0 + 20ms);
    EXPECT_EQ(start_at(e, t0 + 20ms), "[fd00::1]:80") << "IPv6 first once AAAA is in";
    EXPECT_EQ(start_at(e, t0 + 270ms), "10.0.0.1:80");
    EXPECT_EQ(e.report().first_answer, 5ms);
}

TEST(eyeballs, without_aaaa_the_a_addresses_start_after_the_resolution_delay) {
    eyeballs e({}, t0, "dual.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    e.answer(address_family::ipv4, std::vector<endpoint>{ep("10.0.0.1:80")}, t0 + 5ms);
    EXPECT_EQ(start_at(e, t0 + 54ms), "");
    EXPECT_EQ(start_at(e, t0 + 55ms), "10.0.0.1:80");
    // A late AAAA answer joins the race: next in turn, after the attempt delay.
    e.answer(address_family::ipv6, std::vector<endpoint>{ep("[fd00::1]:80")}, t0 + 100ms);
    EXPECT_EQ(start_at(e, t0 + 100ms), "");
    EXPECT_EQ(e.wake_at(), t0 + 305ms);
    EXPECT_EQ(start_at(e, t0 + 305ms), "[fd00::1]:80");
}

TEST(eyeballs, an_aaaa_answer_first_starts_at_once) {
    eyeballs e({}, t0, "dual.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    e.answer(address_family::ipv6, std::vector<endpoint>{ep("[fd00::1]:80")}, t0 + 3ms);
    EXPECT_EQ(start_at(e, t0 + 3ms), "[fd00::1]:80");
    e.answer(address_family::ipv4, std::vector<endpoint>{ep("10.0.0.1:80")}, t0 + 4ms);
    EXPECT_EQ(start_at(e, t0 + 4ms), "");
    EXPECT_EQ(start_at(e, t0 + 253ms), "10.0.0.1:80");
}

TEST(eyeballs, a_failed_aaaa_lookup_does_not_hold_the_a_addresses) {
    eyeballs e({}, t0, "v4only.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    e.answer(address_family::ipv6,
             failure{error_info{make_error_code(errc::resolve), "cannot resolve: no IPv6"}},
             t0 + 1ms);
    EXPECT_EQ(start_at(e, t0 + 1ms), "");
    e.answer(address_family::ipv4, std::vector<endpoint>{ep("10.0.0.1:80")}, t0 + 2ms);
    EXPECT_EQ(start_at(e, t0 + 2ms), "10.0.0.1:80");
    e.failed(0, refused(), t0 + 3ms);
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, std::errc::connection_refused) << "the lookup error is not the news";
}

TEST(eyeballs, failed_lookups_give_one_resolve_error) {
    const error_info same{make_error_code(errc::resolve),
                          "cannot resolve 'nosuch.invalid': Name or service not known"};
    eyeballs e({}, t0, "nosuch.invalid:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    e.answer(address_family::ipv6, failure{same}, t0);
    EXPECT_FALSE(e.done());
    e.answer(address_family::ipv4, failure{same}, t0);
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::resolve);
    EXPECT_EQ(e.error().detail, same.detail);

    eyeballs d({}, t0, "odd.test:80");
    d.expect_answer(address_family::ipv6);
    d.expect_answer(address_family::ipv4);
    d.answer(address_family::ipv6, failure{error_info{make_error_code(errc::resolve), "six"}}, t0);
    d.answer(address_family::ipv4, failure{error_info{make_error_code(errc::resolve), "four"}}, t0);
    EXPECT_EQ(d.error().detail, "six; four");
}

TEST(eyeballs, when_every_attempt_failed_a_pending_lookup_is_still_awaited) {
    eyeballs e({}, t0, "dual.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    e.answer(address_family::ipv4, std::vector<endpoint>{ep("10.0.0.1:80")}, t0);
    ASSERT_EQ(start_at(e, t0 + 50ms), "10.0.0.1:80");
    e.failed(0, refused(), t0 + 51ms);
    EXPECT_FALSE(e.done());
    EXPECT_TRUE(e.waiting_for_answers());
    EXPECT_EQ(e.wake_at(), t0 + 30s);
    e.answer(address_family::ipv6, std::vector<endpoint>{ep("[fd00::1]:80")}, t0 + 400ms);
    EXPECT_EQ(start_at(e, t0 + 400ms), "[fd00::1]:80") << "nothing in flight: start at once";
}

TEST(eyeballs, a_deadline_before_any_answer_says_so) {
    connect_options o;
    o.timeout = 2s;
    eyeballs e(o, t0, "slow.test:80");
    e.expect_answer(address_family::ipv6);
    e.expect_answer(address_family::ipv4);
    EXPECT_FALSE(e.next(t0 + 2s));
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::timed_out);
    EXPECT_EQ(e.error().detail,
              "connect to slow.test:80: timed out after 2000 ms before any address was known; "
              "the AAAA lookup had not answered; the A lookup had not answered");
}

TEST(eyeballs, a_zero_timeout_times_out_before_the_first_attempt) {
    connect_options o;
    o.timeout = 0s;
    const std::vector<endpoint> addrs = {ep("127.0.0.1:80")};
    eyeballs e(o, t0, "127.0.0.1:80");
    e.add_addresses(addrs, t0);
    EXPECT_FALSE(e.next(t0));
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::timed_out);
    EXPECT_EQ(e.error().detail,
              "connect to 127.0.0.1:80: timed out after 0.0 ms before the first "
              "attempt");
}

TEST(eyeballs, stop_cancels_what_is_in_flight) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    e.stop(t0 + 10ms);
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::aborted);
    EXPECT_EQ(e.report().attempts[0].outcome, attempt_outcome::cancelled);
    EXPECT_EQ(e.report().untried, 1U);
}

TEST(eyeballs, no_address_at_all_is_an_invalid_argument) {
    eyeballs e({}, t0, "nothing");
    e.add_addresses({}, t0);
    ASSERT_TRUE(e.done());
    EXPECT_EQ(e.error().code, errc::invalid_argument);
    EXPECT_EQ(e.error().detail, "connect to nothing: no address to connect to");
}

TEST(eyeballs, first_family_count_two_takes_two_of_the_first_family) {
    connect_options o;
    o.first_family_count = 2;
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("[::2]:80"), ep("127.0.0.1:80"),
                                         ep("[::3]:80")};
    eyeballs e(o, t0, "x:80");
    e.add_addresses(addrs, t0);
    std::vector<std::string> order;
    for (int i = 0; i < 4; ++i)
        order.push_back(start_at(e, t0 + i * 250ms));
    EXPECT_EQ(order,
              (std::vector<std::string>{"[::1]:80", "[::2]:80", "127.0.0.1:80", "[::3]:80"}));
}

TEST(eyeballs, duplicate_addresses_are_tried_once) {
    const std::vector<endpoint> addrs = {ep("127.0.0.1:80"), ep("127.0.0.1:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    e.failed(0, refused(), t0);
    EXPECT_TRUE(e.done());
    EXPECT_EQ(e.report().attempts.size(), 1U);
}

}  // namespace
}  // namespace orderly
