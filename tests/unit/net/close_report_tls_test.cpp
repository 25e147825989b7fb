// The TLS part of close_report (filled by orderly::tls's tls_stream): words, text and JSON.
#include <gtest/gtest.h>

#include "orderly/core/errc.hpp"
#include "orderly/net/close_report.hpp"

namespace orderly {
namespace {

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

TEST(close_report_tls, outcome_words_and_not_open_last) {
    EXPECT_EQ(to_string(close_outcome::tls_truncated), "tls_truncated");
    EXPECT_EQ(to_string(close_outcome::tls_error), "tls_error");
    EXPECT_LT(static_cast<std::size_t>(close_outcome::tls_error),
              static_cast<std::size_t>(close_outcome::not_open));
    EXPECT_EQ(close_outcome_count, static_cast<std::size_t>(close_outcome::not_open) + 1);
    EXPECT_EQ(to_string(close_notify_wait::received), "received");
    EXPECT_EQ(to_string(close_notify_wait::not_waited), "not_waited");
    EXPECT_EQ(to_string(close_notify_wait::peer_fin), "peer_fin");
    EXPECT_EQ(to_string(close_notify_wait::deadline), "deadline");
    EXPECT_EQ(to_string(close_notify_wait::none), "none");
}

TEST(close_report_tls, text_and_json_carry_the_tls_end) {
    close_report r;
    r.outcome = close_outcome::tls_truncated;
    r.method = close_method::graceful;
    r.error = make_error_code(errc::tls_truncated);
    EXPECT_TRUE(contains(r.to_json(), "\"tls\":null")) << r.to_json();
    EXPECT_FALSE(contains(r.to_string(), "close_notify sent")) << r.to_string();
    tls_close_info t;
    t.close_notify_sent = true;
    t.wait = close_notify_wait::peer_fin;
    t.version = "TLSv1.3";
    t.cipher = "TLS_AES_128_GCM_SHA256";
    t.alpn = "h2";
    t.detail = "unexpected \"eof\"";
    r.tls = t;
    const std::string line = r.to_string();
    EXPECT_EQ(line.rfind("tls_truncated (graceful, ", 0), 0U) << line;
    EXPECT_TRUE(contains(line, "tls TLSv1.3 TLS_AES_128_GCM_SHA256 alpn h2")) << line;
    EXPECT_TRUE(contains(line, "close_notify sent yes received no (peer_fin)")) << line;
    const std::string j = r.to_json();
    for (const char* part :
         {"\"outcome\":\"tls_truncated\"", "\"close_notify_sent\":true",
          "\"close_notify_received\":false", "\"close_notify_wait\":\"peer_fin\"",
          "\"version\":\"TLSv1.3\"", "\"alpn\":\"h2\"", "\"detail\":\"unexpected \\\"eof\\\"\""}) {
        EXPECT_TRUE(contains(j, part)) << "missing " << part << " in: " << j;
    }
    EXPECT_EQ(j.back(), '}');
}

}  // namespace
}  // namespace orderly
