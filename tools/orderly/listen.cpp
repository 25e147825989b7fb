// orderly listen HOST:PORT: the netcat server side, with the same pump as connect.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "cli.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "tls_options.hpp"

namespace orderly::cli {
namespace {

struct listen_config {
    std::string where;
    bool keep = false;
    std::string on_stdin_eof = "half-close";
    std::string accept_timeout;
    std::string idle_timeout;
    std::string close_timeout = "5s";
    report_options report;
    bool verbose = false;
    bool dual_stack = false;
    tls_server_flags tls;  // --tls-cert/--tls-key: TLS on every accepted connection
};

// One accepted connection over TLS: the handshake (bounded), then the pump.
pump_result serve_tls(stream_socket s, const tls_context& ctx, const pump_options& po,
                      const std::string& label) {
    pump_result r;
    auto t = tls_stream::server(std::move(s), ctx);
    if (!t) {
        print_error(t.error().message());
        r.code = exit_failure;
        return r;
    }
    const auto hs_timeout = po.idle_timeout.value_or(std::chrono::seconds(10));
    if (auto hs = t->handshake(deadline::after(hs_timeout)); !hs) {
        print_error(fmt::format("TLS handshake with {}: {}", label, hs.error().message()));
        r.report = t->abort();
        r.code = exit_code_for(hs.error().code);
        return r;
    }
    return pump(*t, po);
}

int run_listen(const listen_config& cfg) {
    ignore_sigpipe();
    install_stop_signals();
    auto tls = make_tls_server_context(cfg.tls);
    if (tls.code != exit_ok) return tls.code;
    const std::optional<tls_context>& ctx = tls.ctx;
    listen_options so;
    if (cfg.dual_stack) so.v6_only = false;
    so.replace_unix_socket_file = true;
    auto l = orderly::listen(cfg.where, so);
    if (!l) {
        print_error(l.error().message());
        if (exit_code_for(l.error().code) == exit_usage) return exit_usage;
        return l.error().code == make_error_code(errc::resolve) ? exit_unreachable : exit_failure;
    }
    fmt::print(stderr, "listening on {}\n", l->local_endpoint().to_string());
    (void)std::fflush(stderr);

    deadline accept_until = deadline::never();
    if (!cfg.accept_timeout.empty())
        accept_until = deadline::after(*parse_duration(cfg.accept_timeout));

    int last_code = exit_ok;
    bool stdin_used_up = false;
    for (;;) {
        // Accept in short slices so that SIGINT/SIGTERM stop the wait promptly.
        auto s = l->accept(earliest(accept_until, deadline::after(std::chrono::milliseconds(200))));
        if (!s) {
            if (s.error() == make_error_code(errc::timed_out)) {
                if (stop_requested()) return last_code;
                if (accept_until.expired()) {
                    print_error("no connection arrived before --accept-timeout");
                    return exit_timed_out;
                }
                continue;
            }
            print_error(fmt::format("accept: {}", s.error().message()));
            return exit_failure;
        }
        auto peer = s->peer_endpoint();
        const std::string label = peer ? peer->to_string() : "?";
        if (cfg.verbose) fmt::print(stderr, "accepted {}\n", label);

        pump_options po;
        po.on_stdin_eof = parse_stdin_eof_action(cfg.on_stdin_eof, &po.quiet);
        if (!cfg.idle_timeout.empty()) po.idle_timeout = parse_duration(cfg.idle_timeout);
        po.close_timeout = *parse_duration(cfg.close_timeout);
        // Once stdin has ended, later connections (--keep) get our FIN at once.
        po.in_fd = stdin_used_up ? -1 : 0;
        auto r = ctx ? serve_tls(std::move(*s), *ctx, po, label) : pump(*s, po);
        if (po.in_fd >= 0) stdin_used_up = true;
        print_exchange_report(cfg.report, r, label);
        last_code = r.code;
        if (!cfg.keep || stop_requested()) return last_code;
    }
}

}  // namespace

void add_listen_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<listen_config>();
    auto* sub = app.add_subcommand(
        "listen",
        "Listen on HOST:PORT, accept one connection and pump stdin/stdout like connect.\n"
        "Prints 'listening on <endpoint>' as its first line on stderr (port 0 picks a free port).");
    sub->add_option("address", cfg->where,
                    "Where to listen: HOST:PORT, [v6]:PORT, unix:/path or unix:@name (Linux\n"
                    "  abstract socket); port 0 = any free port\n"
                    "  e.g. orderly listen 127.0.0.1:0, orderly listen unix:/tmp/o.sock")
        ->type_name("ADDRESS")
        ->required();
    sub->add_flag("-k,--keep", cfg->keep,
                  "Accept connections one after another until SIGINT/SIGTERM\n"
                  "  (stdin goes to the first; later ones get our FIN at once), e.g. --keep");
    add_exchange_options(*sub, cfg->on_stdin_eof, cfg->idle_timeout, cfg->close_timeout);
    add_duration_option(
        *sub, "--accept-timeout", cfg->accept_timeout,
        "Exit 5 when no connection arrives within this long, e.g. --accept-timeout 30s");
    sub->add_flag("--dual-stack", cfg->dual_stack,
                  "On [::]:PORT, accept IPv4 clients too, e.g. orderly listen --dual-stack [::]:0");
    add_tls_server_options(*sub, cfg->tls);
    sub->add_flag("--report", cfg->report.report,
                  "Print each connection's close report to stderr, e.g. --report");
    sub->add_flag("--json", cfg->report.json,
                  "Print each close report as one JSON object per line on stderr, e.g. --json");
    sub->add_flag("-v,--verbose", cfg->verbose,
                  "Print each accepted peer on stderr, e.g. orderly listen -v 127.0.0.1:0");
    sub->footer(std::string("Examples:\n"
                            "  orderly listen 127.0.0.1:0 > upload.bin\n"
                            "  echo hello | orderly listen --keep --report [::1]:9000\n\n") +
                exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_listen(*cfg); }; });
}

}  // namespace orderly::cli
