// connect_report's text and JSON, from races of the schedule with made-up times.

#include "orderly/net/connect_report.hpp"

#include <gtest/gtest.h>

#include "orderly/net/eyeballs.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

const clock::time_point t0 = clock::time_point{} + std::chrono::hours(1);

endpoint ep(std::string_view text) {
    return endpoint::parse(text).value();
}

std::error_code refused() {
    return std::make_error_code(std::errc::connection_refused);
}

TEST(connect_report, as_json) {
    const std::vector<endpoint> addrs = {ep("[::1]:80"), ep("127.0.0.1:80")};
    eyeballs e({}, t0, "x:80");
    e.add_addresses(addrs, t0);
    ASSERT_TRUE(e.next(t0));
    e.failed(0, refused(), t0 + 2ms);
    ASSERT_TRUE(e.next(t0 + 2ms));
    ASSERT_TRUE(e.connected(1, t0 + 3ms));
    EXPECT_EQ(e.report().to_json(),
              "{\"connected_to\":\"127.0.0.1:80\",\"connect_ms\":3.000,\"first_answer_ms\":0.000,"
              "\"attempts\":["
              "{\"to\":\"[::1]:80\",\"started_ms\":0.000,\"ended_ms\":2.000,\"outcome\":\"failed\","
              "\"error\":\"connection refused\"},"
              "{\"to\":\"127.0.0.1:80\",\"started_ms\":2.000,\"ended_ms\":3.000,\"outcome\":"
              "\"connected\",\"error\":null}],\"untried\":0}");
}

TEST(connect_report, outcome_words_are_stable) {
    EXPECT_EQ(to_string(attempt_outcome::in_flight), "in_flight");
    EXPECT_EQ(to_string(attempt_outcome::connected), "connected");
    EXPECT_EQ(to_string(attempt_outcome::failed), "failed");
    EXPECT_EQ(to_string(attempt_outcome::timed_out), "timed_out");
    EXPECT_EQ(to_string(attempt_outcome::cancelled), "cancelled");
    EXPECT_EQ(to_string(attempt_outcome::lost_tie), "lost_tie");
}

TEST(connect_report, one_attempt_reads_short_and_failures_count_the_untried) {
    connect_report r;
    r.attempts.push_back({ep("127.0.0.1:80"), 0ms, 3ms, attempt_outcome::connected, {}});
    r.winner = 0;
    r.took = 3ms;
    EXPECT_EQ(r.to_string(), "connected to 127.0.0.1:80 after 3.0 ms");
    connect_report f;
    f.attempts.push_back({ep("[::1]:80"), 0ms, 40ms, attempt_outcome::failed, refused()});
    f.untried = 2;
    f.took = 40ms;
    EXPECT_EQ(f.failures(), "[::1]:80: connection refused; 2 more addresses not tried");
    EXPECT_EQ(
        f.to_string(),
        "not connected after 40 ms: [::1]:80: connection refused; 2 more addresses not tried");
}

}  // namespace
}  // namespace orderly
