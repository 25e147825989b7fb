#pragma once
// Shared by the fault-injection tests: the skip rule, a verifiable byte pattern, deadline checks
// and a TCP connection across the two namespaces of a netns_pair.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "orderly/core/errc.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/stream_socket.hpp"
#include "support/netns.hpp"

namespace orderly::test::faults {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Skip (only) when namespaces may not be created here; any other setup failure fails the test.
#define ORDERLY_NEED_NETNS(net)                                           \
    do {                                                                  \
        if ((net).not_permitted()) GTEST_SKIP() << (net).skip_reason();   \
        ASSERT_TRUE((net).ready()) << "netns fixture: " << (net).error(); \
    } while (0)

// Byte i of a stream is (i + seed) mod 251: a prime period, so a lost, repeated or reordered
// chunk of any power-of-two size shows up at its first byte.
inline std::string pattern(std::size_t n, std::size_t seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i + seed) % 251);
    return s;
}

// Offset of the first byte that breaks the pattern, or npos when all of `got` follows it.
inline std::size_t pattern_mismatch(std::string_view got, std::size_t seed = 0) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != static_cast<char>((i + seed) % 251)) return i;
    }
    return std::string_view::npos;
}

inline double ms(steady::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

// A timeout must fire at its deadline: not early, not more than 10 % late.
inline ::testing::AssertionResult near_deadline(steady::duration took, steady::duration limit) {
    const double t = ms(took);
    const double d = ms(limit);
    if (t >= 0.9 * d && t <= 1.1 * d) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "ended after " << t << " ms, outside " << d << " ms +-10 %";
}

// What ends early (a reset, a clean end) must still end before its deadline.
inline ::testing::AssertionResult within_deadline(steady::duration took, steady::duration limit) {
    if (took <= limit) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "ended after " << ms(took) << " ms, past its deadline of " << ms(limit) << " ms";
}

// One line per case on stdout and as a test property, for the table in docs/reliability.md.
inline void note_timing(std::string_view outcome, steady::duration took, steady::duration limit) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::printf("[timing] %s.%s: %s after %.0f ms (deadline %.0f ms)\n", info->test_suite_name(),
                info->name(), std::string(outcome).c_str(), ms(took), ms(limit));
    ::testing::Test::RecordProperty("outcome", std::string(outcome));
    ::testing::Test::RecordProperty("took_ms", static_cast<int>(ms(took)));
}

inline close_options close_within(clock::duration timeout) {
    close_options o;
    o.timeout = timeout;
    return o;
}

inline void note_dropped(long long packets) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::printf("[timing] %s.%s: %lld packets dropped by the loss rules\n", info->test_suite_name(),
                info->name(), packets);
}

// A TCP connection from namespace B (client) to a listener in namespace A (server).
struct tcp_link {
    listener lis;
    stream_socket client;  // lives in B
    stream_socket server;  // lives in A
};

inline tcp_link connect_across(netns_pair& net) {
    tcp_link link;
    auto l = net.in(side::a, [&] { return listener::listen(net.address(side::a, 0)); });
    EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message());
    if (!l) return link;
    link.lis = std::move(*l);
    auto c = net.in(side::b, [&] {
        return stream_socket::connect(net.address(side::a, link.lis.local_endpoint().port()), 5s);
    });
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
    if (!c) return link;
    link.client = std::move(*c);
    auto s = link.lis.accept(deadline::after(5s));
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    if (!s) return link;
    link.server = std::move(*s);
    return link;
}

// Reads from `s` until at least `want` bytes arrived in total or the deadline passes; returns the
// count (bytes are appended to `out` when given).
inline std::size_t read_at_least(stream_socket& s, std::size_t want, deadline until,
                                 std::string* out = nullptr) {
    std::size_t got = 0;
    char buf[65536];
    while (got < want) {
        auto n = s.recv(std::span<char>(buf), until);
        if (!n || *n == 0) break;
        got += *n;
        if (out != nullptr) out->append(buf, *n);
    }
    return got;
}

}  // namespace orderly::test::faults
