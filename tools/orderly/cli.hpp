#pragma once
// What the subcommand files share: registration hooks for main.cpp, option parsing helpers, the
// stdin/stdout pump and report printing.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "exit_codes.hpp"
#include "orderly/orderly.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace orderly {
class tls_stream;
}  // namespace orderly

namespace orderly::cli {

// Each subcommand adds itself to the app; when it is chosen, its callback stores the work in `run`
// so that main() runs it after parsing and turns its return value into the exit status.
using runner = std::function<int()>;
void add_connect_command(CLI::App& app, runner& run);
void add_listen_command(CLI::App& app, runner& run);
void add_serve_command(CLI::App& app, runner& run);
void add_lab_command(CLI::App& app, runner& run);
void add_doctor_command(CLI::App& app, runner& run);
void add_cert_command(CLI::App& app, runner& run);

// "250ms", "2s", "1.5" (seconds), "1m". nullopt when the text is not a duration.
std::optional<clock::duration> parse_duration(std::string_view text);
// "4096", "64K", "1M", "1G" (binary multiples). nullopt when the text is not a size.
std::optional<std::uint64_t> parse_size(std::string_view text);
// CLI11 validators for the two forms, so that bad values are usage errors naming the option.
std::string check_duration(const std::string& text);
std::string check_size(const std::string& text);
// A CLI11 check for a count option: a whole number 0..max, else a message saying the range.
std::function<std::string(const std::string&)> check_count_range(std::uint64_t max);

// How the close report of a connection is printed (--report, --json).
struct report_options {
    bool report = false;
    bool json = false;
    [[nodiscard]] bool any() const noexcept { return report || json; }
};
// Prints the report to stderr, prefixed by `label` in the human form.
void print_report(const report_options& opts, const close_report& r, std::string_view label = {});

// SIGINT/SIGTERM set a flag instead of killing the process, so servers can stop gracefully.
void install_stop_signals();
bool stop_requested() noexcept;
// SIGPIPE would kill us when stdout is a closed pipe; every socket send already uses MSG_NOSIGNAL.
void ignore_sigpipe();

// What connect and listen do when stdin ends.
enum class stdin_eof_action { half_close, close, keep, quiet };
// "half-close", "close", "keep" or "quiet=DURATION" (already validated by the option's check);
// `quiet` receives the duration of quiet=DURATION.
stdin_eof_action parse_stdin_eof_action(std::string_view text, clock::duration* quiet = nullptr);
// The option's check: empty when `text` is one of the forms above, else the message.
std::string check_stdin_eof(const std::string& text);

// A DURATION option ("250ms", "2s"); a bad value is a usage error naming the option.
CLI::Option* add_duration_option(CLI::App& sub, const std::string& name, std::string& into,
                                 const std::string& help);
// --on-stdin-eof, --idle-timeout and --close-timeout, as connect and listen share them.
void add_exchange_options(CLI::App& sub, std::string& on_stdin_eof, std::string& idle_timeout,
                          std::string& close_timeout);

struct pump_options {
    stdin_eof_action on_stdin_eof = stdin_eof_action::half_close;
    // For stdin_eof_action::quiet: after stdin's end, our FIN waits until nothing has arrived
    // for this long (counted from the last byte received, or from stdin's end).
    clock::duration quiet = std::chrono::seconds(1);
    std::optional<clock::duration> idle_timeout;  // nothing moved in either direction for this long
    deadline until = deadline::never();           // the whole exchange
    clock::duration close_timeout = std::chrono::seconds(5);
    int in_fd = 0;
    int out_fd = 1;
};

struct pump_result {
    int code = exit_ok;
    close_report report;
    // We had sent our FIN (half-close) and the peer's EOF came after it: a peer that treats our
    // FIN as "abort" (nginx, `nc -l`) may have cut its reply short, so the report says so.
    bool peer_ended_while_half_closed = false;
    bool hint_quiet = false;  // the default half-close was in use: suggest quiet=DURATION
};

// The close report with what the pump knows (peer_ended_while_half_closed): one line for
// --report, one JSON object for --json.
std::string exchange_text(const pump_result& r);
std::string exchange_json(const pump_result& r);
// print_report() for a pumped connection.
void print_exchange_report(const report_options& opts, const pump_result& r,
                           std::string_view label = {});

// Copies in_fd to the socket and the socket to out_fd until both directions ended (or an error,
// a timeout), then ends the connection. Never throws. Prints errors to stderr.
pump_result pump(stream_socket& s, const pump_options& opts);
// The same over TLS: the peer's end is its close_notify (a FIN without it: exit 6), ours is
// close_notify then FIN; the close report has the TLS part.
pump_result pump(tls_stream& s, const pump_options& opts);

// "orderly: <message>" on stderr.
void print_error(std::string_view message);

}  // namespace orderly::cli
