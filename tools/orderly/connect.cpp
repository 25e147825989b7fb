// orderly connect HOST:PORT: a netcat client whose end is orderly by default.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli.hpp"

namespace orderly::cli {
namespace {

struct connect_config {
    std::string where;
    std::string on_stdin_eof = "half-close";
    std::string timeout = "30s";
    std::string idle_timeout;
    std::string deadline_text;
    std::string close_timeout = "5s";
    report_options report;
    bool verbose = false;
};

int run_connect(const connect_config& cfg) {
    ignore_sigpipe();
    install_stop_signals();
    pump_options po;
    po.on_stdin_eof = parse_stdin_eof_action(cfg.on_stdin_eof);
    if (!cfg.idle_timeout.empty()) po.idle_timeout = parse_duration(cfg.idle_timeout);
    if (!cfg.deadline_text.empty()) po.until = deadline::after(*parse_duration(cfg.deadline_text));
    po.close_timeout = *parse_duration(cfg.close_timeout);
    clock::duration connect_timeout = *parse_duration(cfg.timeout);
    // The whole-exchange deadline also bounds the connect.
    if (!po.until.is_never()) connect_timeout = std::min(connect_timeout, po.until.remaining());

    auto s = orderly::connect(cfg.where, connect_timeout);
    if (!s) {
        print_error(s.error().message());
        return exit_code_for(s.error().code);
    }
    if (cfg.verbose) {
        auto local = s->local_endpoint();
        auto peer = s->peer_endpoint();
        fmt::print(stderr, "connected {} -> {}\n", local ? local->to_string() : "?",
                   peer ? peer->to_string() : "?");
    }
    auto r = pump(*s, po);
    print_report(cfg.report, r.report);
    return r.code;
}

}  // namespace

void add_connect_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<connect_config>();
    auto* sub = app.add_subcommand(
        "connect",
        "Connect to HOST:PORT, copy stdin to the socket and the socket to stdout.\n"
        "When stdin ends it half-closes (sends FIN) and keeps printing the reply until the\n"
        "peer's EOF, then closes: no reply is cut off, unlike nc without -N or socat's 0.5 s.");
    sub->add_option("address", cfg->where,
                    "Where to connect: HOST:PORT, [v6]:PORT or unix:/path\n"
                    "  e.g. orderly connect example.org:80, orderly connect [::1]:8080")
        ->type_name("ADDRESS")
        ->required();
    add_exchange_options(*sub, cfg->on_stdin_eof, cfg->idle_timeout, cfg->close_timeout);
    add_duration_option(*sub, "--timeout", cfg->timeout,
                        "Give up connecting after this long (default 30s), e.g. --timeout 500ms");
    add_duration_option(*sub, "--deadline", cfg->deadline_text,
                        "Bound the whole exchange, connect included (exit 5 when it passes),\n"
                        "  e.g. --deadline 1m");
    sub->add_flag("--report", cfg->report.report,
                  "Print how the connection ended (the close report) to stderr,\n"
                  "  e.g. orderly connect --report localhost:7");
    sub->add_flag(
        "--json", cfg->report.json,
        "Print the close report as one JSON object on stderr (implies --report), e.g. --json");
    sub->add_flag("-v,--verbose", cfg->verbose,
                  "Print the local and remote endpoint on stderr, e.g. orderly connect -v host:80");
    sub->footer(
        std::string("Examples:\n"
                    "  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | orderly connect example.org:80\n"
                    "  orderly connect --report --timeout 2s 127.0.0.1:8080 < request.bin\n"
                    "  orderly connect unix:/run/app.sock\n\n") +
        exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_connect(*cfg); }; });
}

}  // namespace orderly::cli
