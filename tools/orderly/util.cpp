// Helpers shared by the subcommands: option value parsing, exit code mapping, signals, reports.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <string>

#include "cli.hpp"

namespace orderly::cli {

exit_code exit_code_for(const std::error_code& ec) noexcept {
    if (!ec) return exit_ok;
    if (ec.category() == orderly_category()) {
        switch (static_cast<errc>(ec.value())) {
            case errc::address_parse:
            case errc::invalid_argument:
                return exit_usage;
            case errc::resolve:
                return exit_unreachable;
            case errc::peer_reset:
            case errc::connection_closed:
                return exit_reset;
            case errc::timed_out:
                return exit_timed_out;
            case errc::tls_truncated:
                return exit_tls_truncated;
            case errc::tls_handshake_failed:
            case errc::tls_verify_failed:
            case errc::tls_protocol_error:
                return exit_tls_failed;
            case errc::tls_config_error:
                return exit_usage;  // a certificate/key/CA file that cannot be used
            default:
                return exit_failure;
        }
    }
    if (ec.category() == std::system_category() || ec.category() == std::generic_category()) {
        switch (ec.value()) {
            case ECONNREFUSED:
            case ENETUNREACH:
            case EHOSTUNREACH:
            case EADDRNOTAVAIL:
            case ENOENT:  // a Unix socket path nobody listens on
                return exit_unreachable;
            case ECONNRESET:
            case EPIPE:
                return exit_reset;
            case ETIMEDOUT:
                return exit_timed_out;
            default:
                return exit_failure;
        }
    }
    return exit_failure;
}

namespace {

// Splits "1.5ms" into 1.5 and "ms".
bool split_number(std::string_view text, double& number, std::string_view& unit) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
        ++i;
    if (i == 0) return false;
    const std::string digits(text.substr(0, i));
    char* end = nullptr;
    errno = 0;
    number = std::strtod(digits.c_str(), &end);
    if (errno != 0 || end != digits.c_str() + digits.size() || number < 0) return false;
    unit = text.substr(i);
    return true;
}

}  // namespace

std::optional<clock::duration> parse_duration(std::string_view text) {
    double n = 0;
    std::string_view unit;
    if (!split_number(text, n, unit)) return std::nullopt;
    double seconds = 0;
    if (unit.empty() || unit == "s") {
        seconds = n;
    } else if (unit == "ms") {
        seconds = n / 1000.0;
    } else if (unit == "us") {
        seconds = n / 1e6;
    } else if (unit == "m" || unit == "min") {
        seconds = n * 60.0;
    } else if (unit == "h") {
        seconds = n * 3600.0;
    } else {
        return std::nullopt;
    }
    if (seconds > 1e7) return std::nullopt;  // beyond any sensible timeout; avoids overflow
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    const auto* first = text.data();
    const auto* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || ptr == first) return std::nullopt;
    const std::string_view unit(ptr, static_cast<std::size_t>(last - ptr));
    std::uint64_t mult = 1;
    if (unit.empty() || unit == "B") {
        mult = 1;
    } else if (unit == "K" || unit == "k" || unit == "KiB") {
        mult = 1ULL << 10;
    } else if (unit == "M" || unit == "m" || unit == "MiB") {
        mult = 1ULL << 20;
    } else if (unit == "G" || unit == "g" || unit == "GiB") {
        mult = 1ULL << 30;
    } else {
        return std::nullopt;
    }
    if (n > (UINT64_MAX / mult)) return std::nullopt;
    return n * mult;
}

std::string check_duration(const std::string& text) {
    if (parse_duration(text)) return {};
    return "'" + text + "' is not a duration (examples: 500ms, 2s, 1.5, 1m)";
}

std::string check_size(const std::string& text) {
    if (parse_size(text)) return {};
    // Digits and a known unit, but too many: say so rather than "not a byte count".
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    const std::string unit = text.substr(digits);
    if (digits > 0 && parse_size("1" + unit)) {
        return "'" + text + "' overflows: the largest byte count is " + std::to_string(UINT64_MAX) +
               " (16 EiB - 1)";
    }
    return "'" + text + "' is not a byte count (examples: 100, 64K, 1M)";
}

std::function<std::string(const std::string&)> check_count_range(std::uint64_t max) {
    return [max](const std::string& text) -> std::string {
        std::uint64_t n = 0;
        const auto* last = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), last, n);
        if (!text.empty() && ptr == last && ec == std::errc() && n <= max) return {};
        return "'" + text + "' is not allowed: expected a whole number from 0 to " +
               std::to_string(max);
    };
}

stdin_eof_action parse_stdin_eof_action(std::string_view text, clock::duration* quiet) {
    if (text == "close") return stdin_eof_action::close;
    if (text == "keep") return stdin_eof_action::keep;
    if (text.substr(0, 6) == "quiet=") {
        if (quiet != nullptr) {
            if (auto d = parse_duration(text.substr(6))) *quiet = *d;
        }
        return stdin_eof_action::quiet;
    }
    return stdin_eof_action::half_close;
}

std::string check_stdin_eof(const std::string& text) {
    if (text == "half-close" || text == "close" || text == "keep") return {};
    if (text.substr(0, 6) == "quiet=") {
        const auto d = parse_duration(std::string_view(text).substr(6));
        if (d && *d > clock::duration::zero()) return {};
        return "'" + text.substr(6) +
               "' after quiet= is not a positive duration (e.g. quiet=500ms, quiet=2s)";
    }
    return "'" + text + "' is not a policy: expected half-close, close, keep or quiet=DURATION";
}

CLI::Option* add_duration_option(CLI::App& sub, const std::string& name, std::string& into,
                                 const std::string& help) {
    return sub.add_option(name, into, help)->type_name("DURATION")->check(check_duration);
}

void add_exchange_options(CLI::App& sub, std::string& on_stdin_eof, std::string& idle_timeout,
                          std::string& close_timeout) {
    sub.add_option(
           "--on-stdin-eof", on_stdin_eof,
           "What to do when stdin ends:\n"
           "  half-close (default) send FIN, keep reading until the peer's EOF. Right for\n"
           "             peers that answer the whole request after its end (echo, upload);\n"
           "             but HTTP servers (nginx) and `nc -l` take our FIN as the end and\n"
           "             stop sending: their reply is cut short (--report says so)\n"
           "  quiet=D    send no FIN yet; keep reading; once nothing arrived for D (counted\n"
           "             from the last byte received), send FIN and end in order. For HTTP\n"
           "             servers, `nc -l`, redis: e.g. --on-stdin-eof quiet=2s\n"
           "  keep       send no FIN; read until the peer's EOF, then close (a peer that\n"
           "             never closes ends it only by --idle-timeout, exit 5)\n"
           "  close      close at once; unread reply bytes make it an RST (exit 1)\n"
           "  e.g. --on-stdin-eof quiet=2s")
        ->type_name("POLICY")
        ->check(check_stdin_eof);
    add_duration_option(sub, "--idle-timeout", idle_timeout,
                        "Give up (exit 5) when nothing moves in either direction for this long,\n"
                        "  e.g. --idle-timeout 10s");
    add_duration_option(sub, "--close-timeout", close_timeout,
                        "How long the final orderly close waits for the peer's FIN (default 5s),\n"
                        "  e.g. --close-timeout 2s");
}

void print_report(const report_options& opts, const close_report& r, std::string_view label) {
    if (opts.json) {
        fmt::print(stderr, "{}\n", r.to_json());
    } else if (opts.report) {
        if (label.empty()) {
            fmt::print(stderr, "close report: {}\n", r.to_string());
        } else {
            fmt::print(stderr, "close report {}: {}\n", label, r.to_string());
        }
    }
    (void)std::fflush(stderr);
}

std::string exchange_text(const pump_result& r) {
    std::string out = r.report.to_string();
    if (r.peer_ended_while_half_closed) {
        out += "; the peer ended while we had half-closed";
        if (r.hint_quiet) {
            out +=
                " (a peer that takes our FIN as the end, e.g. nginx or nc -l, may have cut its "
                "reply short: try --on-stdin-eof quiet=2s)";
        }
    }
    return out;
}

std::string exchange_json(const pump_result& r) {
    std::string out = r.report.to_json();
    if (out.empty() || out.back() != '}') return out;
    out.pop_back();
    out += ",\"peer_ended_while_half_closed\":";
    out += r.peer_ended_while_half_closed ? "true}" : "false}";
    return out;
}

void print_exchange_report(const report_options& opts, const pump_result& r,
                           std::string_view label) {
    if (opts.json) {
        fmt::print(stderr, "{}\n", exchange_json(r));
    } else if (opts.report) {
        if (label.empty()) {
            fmt::print(stderr, "close report: {}\n", exchange_text(r));
        } else {
            fmt::print(stderr, "close report {}: {}\n", label, exchange_text(r));
        }
    }
    (void)std::fflush(stderr);
}

void print_error(std::string_view message) {
    fmt::print(stderr, "orderly: {}\n", message);
    (void)std::fflush(stderr);
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) {
    g_stop = 1;
}
}  // namespace

void install_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked poll should return and see the flag
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept {
    return g_stop != 0;
}

void ignore_sigpipe() {
    (void)std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace orderly::cli
