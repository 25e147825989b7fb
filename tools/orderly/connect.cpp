// orderly connect HOST:PORT: a netcat client whose end is orderly by default.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "tls_options.hpp"

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
    // --tls and its options
    bool tls = false;
    std::string tls_ca;
    bool tls_insecure = false;
    std::string tls_sni;
    std::string tls_alpn;
};

// The name sent as SNI and verified against the certificate: --tls-sni, else the host part of
// HOST:PORT or [v6]:PORT (an IP literal is verified as an IP SAN). Empty for unix: addresses.
std::string tls_name_for(const connect_config& cfg) {
    if (!cfg.tls_sni.empty()) return cfg.tls_sni;
    const std::string& w = cfg.where;
    if (w.starts_with("unix:")) return {};
    if (w.starts_with("[")) {
        const auto close = w.find(']');
        return close == std::string::npos ? std::string() : w.substr(1, close - 1);
    }
    const auto colon = w.rfind(':');
    return colon == std::string::npos ? w : w.substr(0, colon);
}

// The client context from the --tls options; a file that cannot be used is a usage error.
std::optional<tls_context> tls_client_context(const connect_config& cfg) {
    tls_client_config tc;
    tc.ca_file = cfg.tls_ca;
    tc.insecure_skip_verify = cfg.tls_insecure;
    tc.alpn = split_list(cfg.tls_alpn);
    auto ctx = tls_context::client(tc);
    if (!ctx) {
        print_error(ctx.error().message());
        return std::nullopt;
    }
    if (cfg.tls_insecure) {
        print_error(
            "WARNING: --tls-insecure: the server's certificate and name are NOT verified; "
            "anyone in the path can read and change this connection. For tests only.");
    }
    return std::move(*ctx);
}

// The report of a connection that never got to the pump (the handshake failed).
void print_failed_report(const connect_config& cfg, const close_report& r,
                         const connect_report& how) {
    pump_result pr;
    pr.report = r;
    if (cfg.report.json) {
        fmt::print(stderr, "{}\n", json_with_connect(exchange_json(pr), how));
    } else if (cfg.report.report) {
        print_exchange_report(cfg.report, pr);
    }
}

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

    std::optional<tls_context> ctx;
    if (cfg.tls) {
        if (tls_name_for(cfg).empty() && !cfg.tls_insecure) {
            print_error(
                "--tls: no name to verify the certificate against (a unix: address); "
                "give --tls-sni NAME");
            return exit_usage;
        }
        ctx = tls_client_context(cfg);
        if (!ctx) return exit_usage;
    }

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
    pump_result r;
    if (ctx) {
        auto t = tls_stream::client(std::move(*s), *ctx, tls_name_for(cfg));
        if (!t) {
            print_error(t.error().message());
            return exit_failure;
        }
        // The handshake is part of connecting: --timeout (and --deadline) bound it.
        deadline hs_until = deadline::after(*parse_duration(cfg.timeout));
        if (auto hs = t->handshake(earliest(hs_until, po.until)); !hs) {
            print_error(fmt::format("TLS handshake with {}: {}", cfg.where, hs.error().message()));
            print_failed_report(cfg, t->abort(), how);
            return exit_code_for(hs.error().code);
        }
        if (cfg.verbose) {
            fmt::print(stderr, "tls {} {}{}\n", t->version(), t->cipher(),
                       t->alpn().empty() ? "" : " alpn " + t->alpn());
        }
        r = pump(*t, po);
    } else {
        r = pump(*s, po);
    }
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
    auto* tls_flag = sub->add_flag(
        "--tls", cfg->tls,
        "Speak TLS (1.2 or 1.3): stdin's end sends close_notify then FIN; the reply is\n"
        "  read until the peer's close_notify (a FIN without it: exit 6). The server's\n"
        "  certificate must verify for the host part of ADDRESS (exit 7 if not),\n"
        "  e.g. orderly connect --tls example.org:443");
    sub->add_option("--tls-ca", cfg->tls_ca,
                    "Trust the CA certificate(s) in this PEM file instead of the system store,\n"
                    "  e.g. --tls-ca certs/cert.pem (from orderly cert)")
        ->type_name("FILE")
        ->needs(tls_flag);
    sub->add_flag("--tls-insecure", cfg->tls_insecure,
                  "Do NOT verify the server's certificate or name (anyone in the path can read\n"
                  "  and change the traffic; prints a warning), e.g. --tls-insecure")
        ->needs(tls_flag);
    sub->add_option("--tls-sni", cfg->tls_sni,
                    "Send this server name and verify the certificate against it instead of\n"
                    "  ADDRESS's host, e.g. --tls-sni example.org 192.0.2.1:443")
        ->type_name("NAME")
        ->needs(tls_flag);
    sub->add_option("--tls-alpn", cfg->tls_alpn,
                    "Offer these ALPN protocols (comma-separated, preferred first),\n"
                    "  e.g. --tls-alpn h2,http/1.1")
        ->type_name("LIST")
        ->needs(tls_flag);
    sub->footer(
        std::string("Examples:\n"
                    "  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | orderly connect example.org:80\n"
                    "  orderly connect --report --timeout 2s 127.0.0.1:8080 < request.bin\n"
                    "  printf 'GET /big HTTP/1.0\\r\\n\\r\\n' | orderly connect --on-stdin-eof "
                    "quiet=2s nginx.local:80\n"
                    "  orderly connect unix:/run/app.sock\n"
                    "  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | orderly connect --tls "
                    "example.org:443\n\n") +
        exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_connect(*cfg); }; });
}

}  // namespace orderly::cli
