#include "output.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace load {

void json_object::raw(std::string_view key, std::string value) {
    for (auto& f : fields_) {
        if (f.first == key) {
            f.second = std::move(value);
            return;
        }
    }
    fields_.emplace_back(std::string(key), std::move(value));
}

void json_object::num(std::string_view key, double v) {
    raw(key, std::isfinite(v) ? fmt::format("{}", v) : std::string("null"));
}

void json_object::num(std::string_view key, std::optional<double> v) {
    if (v) {
        num(key, *v);
    } else {
        raw(key, "null");
    }
}

void json_object::integer(std::string_view key, std::int64_t v) {
    raw(key, fmt::format("{}", v));
}

void json_object::integer(std::string_view key, std::uint64_t v) {
    raw(key, fmt::format("{}", v));
}

void json_object::boolean(std::string_view key, bool v) {
    raw(key, v ? "true" : "false");
}

void json_object::str(std::string_view key, std::string_view v) {
    std::string s = "\"";
    for (char ch : v) {
        if (ch == '"' || ch == '\\') {
            s += '\\';
            s += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            s += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
        } else {
            s += ch;
        }
    }
    s += '"';
    raw(key, std::move(s));
}

std::string json_object::dump() const {
    std::string s = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        if (i) s += ", ";
        s += fmt::format("\"{}\": {}", fields_[i].first, fields_[i].second);
    }
    s += "}\n";
    return s;
}

namespace {

json_object g_out;
std::string g_error;

char g_watchdog_json[256];
std::size_t g_watchdog_len = 0;

extern "C" void on_watchdog(int) {
    ssize_t ignored = write(STDOUT_FILENO, g_watchdog_json, g_watchdog_len);
    (void)ignored;
    _exit(3);
}

}  // namespace

json_object& out() {
    return g_out;
}

void set_error(std::string msg) {
    fmt::print(stderr, "orderly_load: {}\n", msg);
    if (g_error.empty()) g_error = std::move(msg);
}

bool has_error() {
    return !g_error.empty();
}

const std::string& first_error() {
    return g_error;
}

void arm_watchdog(std::string_view workload, double seconds) {
    std::string wd = fmt::format(
        "{{\"workload\": \"{}\", \"error\": \"watchdog: still running after {:.0f} s\", \"ok\": "
        "false}}\n",
        workload, seconds);
    g_watchdog_len = std::min(wd.size(), sizeof g_watchdog_json);
    std::memcpy(g_watchdog_json, wd.data(), g_watchdog_len);
    (void)signal(SIGALRM, on_watchdog);
    alarm(static_cast<unsigned>(seconds));
}

void disarm_watchdog() {
    alarm(0);
}

}  // namespace load
