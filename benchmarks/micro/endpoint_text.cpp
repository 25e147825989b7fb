// Text <-> address: endpoint::parse and endpoint::to_string against what a hand-written program
// does with inet_pton/inet_ntop and a sockaddr it fills itself. The raw parsers check as much as
// they need to be correct (port range, buffer sizes) but write no error messages.

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "orderly/net/endpoint.hpp"

namespace orderly::micro {
namespace {

// Realistic rather than minimal inputs: the IPv6 address is longer than libstdc++'s 15-byte
// small-string buffer, so any std::string copy of it allocates; the IPv4 host just fits.
constexpr std::string_view v4_text = "192.168.100.200:8080";
constexpr std::string_view v6_text = "[2001:db8::8a2e:370:7334]:8443";
constexpr std::string_view unix_text = "unix:/run/orderly/app.sock";

bool parse_port(std::string_view s, std::uint16_t& port) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

// "a.b.c.d:port": the host is copied out to NUL-terminate it for inet_pton.
bool parse_v4_raw(std::string_view text, sockaddr_in& out) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    char host[INET_ADDRSTRLEN];
    if (colon >= sizeof host) return false;
    std::memcpy(host, text.data(), colon);
    host[colon] = '\0';
    std::uint16_t port = 0;
    if (!parse_port(text.substr(colon + 1), port)) return false;
    out = sockaddr_in{};
    out.sin_family = AF_INET;
    out.sin_port = htons(port);
    return ::inet_pton(AF_INET, host, &out.sin_addr) == 1;
}

// "[v6]:port", without scope ids.
bool parse_v6_raw(std::string_view text, sockaddr_in6& out) {
    if (text.empty() || text.front() != '[') return false;
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
        return false;
    }
    char host[INET6_ADDRSTRLEN];
    const std::size_t len = close - 1;
    if (len >= sizeof host) return false;
    std::memcpy(host, text.data() + 1, len);
    host[len] = '\0';
    std::uint16_t port = 0;
    if (!parse_port(text.substr(close + 2), port)) return false;
    out = sockaddr_in6{};
    out.sin6_family = AF_INET6;
    out.sin6_port = htons(port);
    return ::inet_pton(AF_INET6, host, &out.sin6_addr) == 1;
}

// "unix:/path": the same input as endpoint::parse gets, prefix included.
bool parse_unix_raw(std::string_view text, sockaddr_un& out, socklen_t& len) {
    constexpr std::string_view prefix = "unix:";
    if (text.substr(0, prefix.size()) != prefix) return false;
    const std::string_view path = text.substr(prefix.size());
    if (path.empty() || path.size() >= sizeof out.sun_path) return false;
    out = sockaddr_un{};
    out.sun_family = AF_UNIX;
    std::memcpy(out.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
}

// One buffer, one std::string at the end: the tight hand-written form.
std::string format_v4_raw(const sockaddr_in& sin) {
    char buf[INET_ADDRSTRLEN + 6];
    if (::inet_ntop(AF_INET, &sin.sin_addr, buf, INET_ADDRSTRLEN) == nullptr) return {};
    std::size_t n = std::strlen(buf);
    buf[n++] = ':';
    const auto [end, ec] = std::to_chars(buf + n, buf + sizeof buf, ntohs(sin.sin_port));
    (void)ec;  // 5 digits always fit
    return std::string(buf, static_cast<std::size_t>(end - buf));
}

std::string format_v6_raw(const sockaddr_in6& sin6) {
    char buf[INET6_ADDRSTRLEN + 8];
    buf[0] = '[';
    if (::inet_ntop(AF_INET6, &sin6.sin6_addr, buf + 1, INET6_ADDRSTRLEN) == nullptr) return {};
    std::size_t n = std::strlen(buf);
    buf[n++] = ']';
    buf[n++] = ':';
    const auto [end, ec] = std::to_chars(buf + n, buf + sizeof buf, ntohs(sin6.sin6_port));
    (void)ec;
    return std::string(buf, static_cast<std::size_t>(end - buf));
}

// The text is laundered through DoNotOptimize every round so the compiler cannot hoist the parse
// out of the loop.
template <class Parse>
void run_parse(benchmark::State& state, std::string_view text, Parse parse) {
    std::string_view input = text;
    for (auto _ : state) {
        benchmark::DoNotOptimize(input);
        if (!parse(input)) {
            state.SkipWithError("parse failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void parse_v4_raw_bench(benchmark::State& state) {
    run_parse(state, v4_text, [](std::string_view t) {
        sockaddr_in sin;
        const bool ok = parse_v4_raw(t, sin);
        benchmark::DoNotOptimize(sin);
        return ok;
    });
}
void parse_v6_raw_bench(benchmark::State& state) {
    run_parse(state, v6_text, [](std::string_view t) {
        sockaddr_in6 sin6;
        const bool ok = parse_v6_raw(t, sin6);
        benchmark::DoNotOptimize(sin6);
        return ok;
    });
}
void parse_unix_raw_bench(benchmark::State& state) {
    run_parse(state, unix_text, [](std::string_view t) {
        sockaddr_un sun;
        socklen_t len = 0;
        const bool ok = parse_unix_raw(t, sun, len);
        benchmark::DoNotOptimize(sun);
        benchmark::DoNotOptimize(len);
        return ok;
    });
}
void parse_orderly_bench(benchmark::State& state, std::string_view text) {
    run_parse(state, text, [](std::string_view t) {
        auto ep = endpoint::parse(t);
        benchmark::DoNotOptimize(ep);
        return ep.has_value();
    });
}

template <class Format>
void run_format(benchmark::State& state, Format format) {
    for (auto _ : state) {
        std::string s = format();
        benchmark::DoNotOptimize(s);
    }
    state.SetItemsProcessed(state.iterations());
}

void format_v4_raw_bench(benchmark::State& state) {
    sockaddr_in sin{};
    if (!parse_v4_raw(v4_text, sin)) {
        state.SkipWithError("parse failed");
        return;
    }
    if (format_v4_raw(sin) != v4_text) {
        state.SkipWithError("the raw formatter does not round-trip the input");
        return;
    }
    run_format(state, [&sin] {
        benchmark::DoNotOptimize(sin);
        return format_v4_raw(sin);
    });
}
void format_v6_raw_bench(benchmark::State& state) {
    sockaddr_in6 sin6{};
    if (!parse_v6_raw(v6_text, sin6)) {
        state.SkipWithError("parse failed");
        return;
    }
    if (format_v6_raw(sin6) != v6_text) {
        state.SkipWithError("the raw formatter does not round-trip the input");
        return;
    }
    run_format(state, [&sin6] {
        benchmark::DoNotOptimize(sin6);
        return format_v6_raw(sin6);
    });
}
void format_orderly_bench(benchmark::State& state, std::string_view text) {
    auto parsed = endpoint::parse(text);
    if (!parsed) {
        state.SkipWithError("parse failed");
        return;
    }
    endpoint ep = *parsed;
    // The same address back: a mismatch would mean the two variants do different work.
    if (ep.to_string() != text) {
        state.SkipWithError("to_string does not round-trip the input");
        return;
    }
    run_format(state, [&ep] {
        benchmark::DoNotOptimize(ep);
        return ep.to_string();
    });
}

[[maybe_unused]] const bool registered = [] {
    benchmark::RegisterBenchmark("endpoint_parse_v4:raw", parse_v4_raw_bench);
    benchmark::RegisterBenchmark("endpoint_parse_v4:orderly", parse_orderly_bench, v4_text);
    benchmark::RegisterBenchmark("endpoint_parse_v6:raw", parse_v6_raw_bench);
    benchmark::RegisterBenchmark("endpoint_parse_v6:orderly", parse_orderly_bench, v6_text);
    benchmark::RegisterBenchmark("endpoint_parse_unix:raw", parse_unix_raw_bench);
    benchmark::RegisterBenchmark("endpoint_parse_unix:orderly", parse_orderly_bench, unix_text);
    benchmark::RegisterBenchmark("endpoint_format_v4:raw", format_v4_raw_bench);
    benchmark::RegisterBenchmark("endpoint_format_v4:orderly", format_orderly_bench, v4_text);
    benchmark::RegisterBenchmark("endpoint_format_v6:raw", format_v6_raw_bench);
    benchmark::RegisterBenchmark("endpoint_format_v6:orderly", format_orderly_bench, v6_text);
    return true;
}();

}  // namespace
}  // namespace orderly::micro
