#pragma once
// Text helpers shared by the reports' to_string()/to_json() (close_report, connect_report) and
// the Happy Eyeballs errors:
// integers and milliseconds without printf (whose decimal point follows the locale and would
// break the JSON in a "de_DE" program) and JSON strings that survive any byte of a Unix name.

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "orderly/core/deadline.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly::detail {

template <class Int>
inline void append_int(std::string& out, Int v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;  // 24 bytes hold any 64-bit integer
    out.append(buf, end);
}

// Milliseconds with 1 or 3 decimals, rounded to nearest. Integer arithmetic rather than printf's
// %f, whose decimal point follows the process locale and would break the JSON in a "de_DE" program.
inline std::string millis(std::chrono::nanoseconds d, int decimals) {
    const std::int64_t unit = decimals == 1 ? 100'000 : 1'000;  // ns per last digit
    const std::int64_t per_ms = decimals == 1 ? 10 : 1'000;
    std::int64_t ns = d.count();
    std::string out;
    if (ns < 0) {
        out += '-';
        ns = -ns;
    }
    const std::int64_t digits = (ns + unit / 2) / unit;
    append_int(out, digits / per_ms);
    out += '.';
    std::string frac;
    append_int(frac, digits % per_ms);
    out.append(static_cast<std::size_t>(decimals) - frac.size(), '0');
    out += frac;
    return out;
}

inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default: {
                const auto u = static_cast<unsigned char>(c);
                if (u < 0x20 || u == 0x7f) {
                    // Abstract Unix names may hold any byte, NUL included.
                    out += "\\u00";
                    out += hex[u >> 4];
                    out += hex[u & 0xf];
                } else {
                    out += c;
                }
            }
        }
    }
    out += '"';
}

inline void append_endpoint_json(std::string& out, const endpoint& e) {
    if (e.family() == address_family::none) {
        out += "null";
    } else {
        append_json_string(out, e.to_string());
    }
}

template <class Int>
inline void json_int(std::string& out, std::string_view key, Int v) {
    out += ",\"";
    out += key;
    out += "\":";
    append_int(out, v);
}

inline void json_bool(std::string& out, std::string_view key, bool v) {
    out += ",\"";
    out += key;
    out += "\":";
    out += v ? "true" : "false";
}

inline void json_key(std::string& out, std::string_view key) {
    out += ",\"";
    out += key;
    out += "\":";
}

// "251 ms", "0.4 ms": one decimal below 10 ms, where loopback connects live.
inline std::string ms_text(std::chrono::nanoseconds d) {
    std::string s = millis(d, 1);
    if (d >= std::chrono::milliseconds(10)) s.resize(s.size() - 2);
    return s + " ms";
}

// "Connection refused" -> "connection refused", as the middle of a sentence; "IPv6 ..." stays.
inline std::string reason_text(const std::error_code& ec) {
    std::string s = ec.message();
    if (s.size() > 1 && std::isupper(static_cast<unsigned char>(s[0])) != 0 &&
        std::islower(static_cast<unsigned char>(s[1])) != 0) {
        s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    }
    return s;
}

}  // namespace orderly::detail
