#include "orderly/net/close_report.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

close_report sample() {
    close_report r;
    r.outcome = close_outcome::clean;
    r.method = close_method::graceful;
    r.bytes_sent = 12;
    r.bytes_received = 5;
    r.bytes_drained = 3;
    r.unacked_bytes = 7;
    r.unread_bytes = 0;
    r.fin_sent = true;
    r.peer_eof = true;
    tcp_info_snapshot t;
    t.state = tcp_state::close_wait;
    t.rtt_us = 42;
    t.total_retransmits = 2;
    r.tcp = t;
    r.close_duration = 3250us;
    r.lifetime = 1500ms;
    r.local = endpoint::ipv4_loopback(5000);
    r.peer = endpoint::ipv6_loopback(6000);
    return r;
}

// A minimal structural check of one JSON object: balanced braces outside strings, strings closed,
// no raw control characters, every '\' followed by a valid escape.
bool looks_like_json_object(const std::string& s) {
    if (s.size() < 2 || s.front() != '{' || s.back() != '}') return false;
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c == '\\') {
                if (++i >= s.size()) return false;
                if (std::string_view("\"\\/bfnrtu").find(s[i]) == std::string_view::npos) {
                    return false;
                }
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{')
            ++depth;
        else if (c == '}' && --depth < 0)
            return false;
        else if (c == '\n')
            return false;
    }
    return !in_string && depth == 0;
}

TEST(close_report, outcome_and_method_words) {
    EXPECT_EQ(to_string(close_outcome::clean), "clean");
    EXPECT_EQ(to_string(close_outcome::closed), "closed");
    EXPECT_EQ(to_string(close_outcome::unread_data_discarded), "unread_data_discarded");
    EXPECT_EQ(to_string(close_outcome::peer_reset), "peer_reset");
    EXPECT_EQ(to_string(close_outcome::timed_out), "timed_out");
    EXPECT_EQ(to_string(close_outcome::drain_limit), "drain_limit");
    EXPECT_EQ(to_string(close_outcome::aborted), "aborted");
    EXPECT_EQ(to_string(close_outcome::error), "error");
    EXPECT_EQ(to_string(close_outcome::not_open), "not_open");
    EXPECT_EQ(to_string(close_method::close), "close");
    EXPECT_EQ(to_string(close_method::graceful), "graceful");
    EXPECT_EQ(to_string(close_method::abort), "abort");
    EXPECT_EQ(to_string(close_method::destructor), "destructor");
}

TEST(close_report, default_is_not_open) {
    const close_report r;
    EXPECT_EQ(r.outcome, close_outcome::not_open);
    EXPECT_FALSE(r.orderly());
    EXPECT_TRUE(sample().orderly());
    const std::string line = r.to_string();
    EXPECT_EQ(line.rfind("not_open", 0), 0U) << line;
    EXPECT_TRUE(contains(line, "(none) -> (none)")) << line;
    EXPECT_TRUE(contains(line, "(0.0 ms)")) << line;
    EXPECT_FALSE(contains(line, "tcp ")) << line;
}

TEST(close_report, line) {
    const std::string line = sample().to_string();
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.rfind("clean (graceful)", 0), 0U) << line;
    for (const char* part :
         {"sent 12 B", "received 5 B", "drained 3 B", "unacked 7 B", "unread 0 B", "fin_sent yes",
          "peer_eof yes", "tcp CLOSE_WAIT", "127.0.0.1:5000 -> [::1]:6000", "(3.3 ms)"}) {
        EXPECT_TRUE(contains(line, part)) << "missing '" << part << "' in: " << line;
    }
}

TEST(close_report, line_with_error) {
    close_report r = sample();
    r.outcome = close_outcome::peer_reset;
    r.error = errno_code(ECONNRESET);
    r.peer_eof = false;
    r.tcp.reset();
    r.close_duration = 0ns;
    const std::string line = r.to_string();
    EXPECT_EQ(line.rfind("peer_reset (graceful, " + r.error.message() + ")", 0), 0U) << line;
    EXPECT_TRUE(contains(line, "peer_eof no")) << line;
    EXPECT_FALSE(contains(line, "tcp ")) << line;
    EXPECT_TRUE(contains(line, "(0.0 ms)")) << line;
}

TEST(close_report, json_fields) {
    const std::string j = sample().to_json();
    EXPECT_TRUE(looks_like_json_object(j)) << j;
    for (const char* part :
         {"\"outcome\":\"clean\"", "\"method\":\"graceful\"", "\"error\":null", "\"bytes_sent\":12",
          "\"bytes_received\":5", "\"bytes_drained\":3", "\"unacked_bytes\":7",
          "\"unread_bytes\":0", "\"fin_sent\":true", "\"peer_eof\":true",
          "\"tcp_state\":\"CLOSE_WAIT\"", "\"rtt_us\":42", "\"retransmits\":2",
          "\"close_duration_ms\":3.250", "\"lifetime_ms\":1500.000", "\"local\":\"127.0.0.1:5000\"",
          "\"peer\":\"[::1]:6000\""}) {
        EXPECT_TRUE(contains(j, part)) << "missing " << part << " in: " << j;
    }
}

TEST(close_report, json_nulls_and_error) {
    close_report r;
    r.outcome = close_outcome::timed_out;
    r.method = close_method::abort;
    r.error = make_error_code(errc::timed_out);
    const std::string j = r.to_json();
    EXPECT_TRUE(looks_like_json_object(j)) << j;
    EXPECT_TRUE(contains(j, "\"error\":\"" + r.error.message() + "\"")) << j;
    EXPECT_TRUE(contains(j, "\"tcp_state\":null")) << j;
    EXPECT_TRUE(contains(j, "\"rtt_us\":null")) << j;
    EXPECT_TRUE(contains(j, "\"retransmits\":null")) << j;
    EXPECT_TRUE(contains(j, "\"local\":null")) << j;
    EXPECT_TRUE(contains(j, "\"peer\":null")) << j;
    EXPECT_TRUE(contains(j, "\"fin_sent\":false")) << j;
    EXPECT_TRUE(contains(j, "\"close_duration_ms\":0.000")) << j;
}

TEST(close_report, json_escapes_endpoint_text) {
    close_report r = sample();
    r.local = *endpoint::unix_path("/tmp/a\"b\\c");
    r.peer = *endpoint::unix_abstract(std::string("x\ny\x01", 4));
    const std::string j = r.to_json();
    EXPECT_TRUE(looks_like_json_object(j)) << j;
    EXPECT_TRUE(contains(j, R"("local":"unix:/tmp/a\"b\\c")")) << j;
    EXPECT_TRUE(contains(j, R"("peer":"unix:@x\ny\u0001")")) << j;
}

TEST(close_report, large_counters) {
    close_report r;
    r.bytes_sent = 18446744073709551615ULL;
    r.lifetime = std::chrono::nanoseconds(123456789);
    const std::string j = r.to_json();
    EXPECT_TRUE(contains(j, "\"bytes_sent\":18446744073709551615")) << j;
    EXPECT_TRUE(contains(j, "\"lifetime_ms\":123.457")) << j;
}

}  // namespace
}  // namespace orderly
