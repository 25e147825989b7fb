// orderly connect HOST:PORT: a netcat client whose end is orderly by default.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli.hpp"

namespace orderly::cli {
namespace {

// --eyeballs-delay: a duration the library accepts as an attempt delay (0, or 100 ms to 2 s).
std::string check_eyeballs_delay(const std::string& text) {
    const auto d = parse_duration(text);
    if (!d) return check_duration(text);
    connect_options o;
    o.attempt_delay = *d;
    auto ok = check_connect_options(o);
    return ok ? std::string() : ok.error().detail;
}

// The close report's JSON object with the connect's record as one more member, "connect", so a
// script reads one object per connection.
std::string json_with_connect(const std::string& close_json, const connect_report& how) {
    std::string out = close_json;
    if (out.empty() || out.back() != '}') return out;
    out.pop_back();
    out += ",\"connect\":" + how.to_json() + "}";
    return out;
}

struct connect_config {
    std::string where;
    std::string on_stdin_eof = "half-close";
    std::string timeout = "30s";
    std::string idle_timeout;
    std::string deadline_text;
    std::string close_timeout = "5s";
    std::string eyeballs_delay = "250ms";
    report_options report;
    bool verbose = false;
};

int run_connect(const connect_config& cfg) {
    ignore_sigpipe();
    install_stop_signals();
    pump_options po;
    po.on_stdin_eof = parse_stdin_eof_action(cfg.on_stdin_eof, &po.quiet);
    if (!cfg.idle_timeout.empty()) po.idle_timeout = parse_duration(cfg.idle_timeout);
    if (!cfg.deadline_text.empty()) po.until = deadline::after(*parse_duration(cfg.deadline_text));
    po.close_timeout = *parse_duration(cfg.close_timeout);
    clock::duration connect_timeout = *parse_duration(cfg.timeout);
    // The whole-exchange deadline also bounds the connect.
    if (!po.until.is_never()) connect_timeout = std::min(connect_timeout, po.until.remaining());

    connect_options copts;
    copts.timeout = connect_timeout;
    copts.attempt_delay = *parse_duration(cfg.eyeballs_delay);
    connect_report how;
    auto s = orderly::connect(cfg.where, copts, &how);
    if (!s) {
        print_error(s.error().message());
        if (cfg.report.json) fmt::print(stderr, "{{\"connect\":{}}}\n", how.to_json());
        return exit_code_for(s.error().code);
    }
    if (cfg.report.report && !cfg.report.json) fmt::print(stderr, "connect: {}\n", how.to_string());
    if (cfg.verbose) {
        auto local = s->local_endpoint();
        auto peer = s->peer_endpoint();
        fmt::print(stderr, "connected {} -> {}\n", local ? local->to_string() : "?",
                   peer ? peer->to_string() : "?");
    }
    auto r = pump(*s, po);
    if (cfg.report.json) {
        fmt::print(stderr, "{}\n", json_with_connect(exchange_json(r), how));
        (void)std::fflush(stderr);
    } else {
        print_exchange_report(cfg.report, r);
    }
    return r.code;
}

}  // namespace

void add_connect_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<connect_config>();
    auto* sub = app.add_subcommand(
        "connect",
        "Connect to HOST:PORT, copy stdin to the socket and the socket to stdout.\n"
        "When stdin ends it half-closes (sends FIN) and keeps printing the reply until the\n"
        "peer's EOF, then closes: we cut no reply off, unlike nc without -N or socat's 0.5 s.\n"
        "But a peer may take our FIN as the end and stop sending (nginx and other HTTP\n"
        "servers, nc -l): for those use --on-stdin-eof quiet=2s (see below).");
    sub->add_option("address", cfg->where,
                    "Where to connect: HOST:PORT, [v6]:PORT, unix:/path or unix:@name\n"
                    "  e.g. orderly connect example.org:80, orderly connect [::1]:8080")
        ->type_name("ADDRESS")
        ->required();
    add_exchange_options(*sub, cfg->on_stdin_eof, cfg->idle_timeout, cfg->close_timeout);
    add_duration_option(*sub, "--timeout", cfg->timeout,
                        "Give up connecting after this long (default 30s), e.g. --timeout 500ms");
    add_duration_option(*sub, "--eyeballs-delay", cfg->eyeballs_delay,
                        "Happy Eyeballs (RFC 8305): start the next address of the host this long\n"
                        "  after the previous one if it has not connected yet (default 250ms,\n"
                        "  100ms to 2s; 0 = one address at a time), e.g. --eyeballs-delay 100ms")
        ->check(check_eyeballs_delay);
    add_duration_option(*sub, "--deadline", cfg->deadline_text,
                        "Bound the whole exchange, connect included (exit 5 when it passes),\n"
                        "  e.g. --deadline 1m");
    sub->add_flag("--report", cfg->report.report,
                  "Print which address won after how long, and how the connection ended\n"
                  "  (the close report), to stderr, e.g. orderly connect --report localhost:7");
    sub->add_flag(
        "--json", cfg->report.json,
        "Print the close report as one JSON object on stderr (implies --report), e.g. --json");
    sub->add_flag("-v,--verbose", cfg->verbose,
                  "Print the local and remote endpoint on stderr, e.g. orderly connect -v host:80");
    sub->footer(
        std::string("Examples:\n"
                    "  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | orderly connect example.org:80\n"
                    "  orderly connect --report --timeout 2s 127.0.0.1:8080 < request.bin\n"
                    "  printf 'GET /big HTTP/1.0\\r\\n\\r\\n' | orderly connect --on-stdin-eof "
                    "quiet=2s nginx.local:80\n"
                    "  orderly connect unix:/run/app.sock\n\n") +
        exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_connect(*cfg); }; });
}

}  // namespace orderly::cli
