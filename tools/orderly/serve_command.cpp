// orderly serve's command line: the modes, the options and their help (the server is serve.cpp).

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "cli.hpp"
#include "serve.hpp"
#include "tls_options.hpp"

namespace orderly::cli {

void add_serve_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<serve_config>();
    auto* sub = app.add_subcommand(
        "serve",
        "Run a test server (many connections at once) for debugging clients. Prints\n"
        "'listening on <endpoint>' first on stderr; SIGINT/SIGTERM stop it gracefully and print\n"
        "how the connections ended.");
    sub->add_option("mode", cfg->mode,
                    "echo     echo until the peer's EOF, then close in order\n"
                    "discard  read until EOF and report the byte count (with --report)\n"
                    "reply    read the request (until EOF or --read bytes), send --bytes, close\n"
                    "  e.g. orderly serve echo 127.0.0.1:0")
        ->required()
        ->check(CLI::IsMember({"echo", "discard", "reply"}));
    sub->add_option("address", cfg->where,
                    "Where to listen: HOST:PORT, [v6]:PORT, unix:/path or unix:@name (Linux\n"
                    "  abstract socket); port 0 = any free port")
        ->type_name("ADDRESS")
        ->required();
    sub->add_option("--bytes", cfg->bytes,
                    "reply: how many bytes to send (default 0; K, M, G suffixes), e.g. --bytes 1M")
        ->type_name("BYTES")
        ->check(check_size);
    sub->add_option("--read", cfg->read_limit,
                    "reply: stop reading the request once this many bytes arrived instead of\n"
                    "  reading until EOF (reads come in chunks of up to 64 KiB, so a little more\n"
                    "  may be taken); the rest stays unread in the kernel,\n"
                    "  e.g. --read 100 (with --close naive this reproduces the lost reply)")
        ->type_name("BYTES")
        ->check(check_size);
    sub->add_option("--close", cfg->close_mode,
                    "reply: how to end after the reply:\n"
                    "  orderly (default) shutdown(write), drain the peer to EOF, close\n"
                    "          (TLS: close_notify, FIN, drain to the peer's close_notify and FIN)\n"
                    "  naive   plain close(): unread request bytes make Linux send RST and the\n"
                    "          client can lose the end of the reply (the bug, on purpose); over\n"
                    "          TLS no close_notify either: the client sees a truncation\n"
                    "  abort   SO_LINGER{1,0}: RST at once\n"
                    "  e.g. --close naive")
        ->check(CLI::IsMember({"orderly", "naive", "abort"}));
    add_duration_option(*sub, "--close-timeout", cfg->close_timeout,
                        "How long an orderly close (and a graceful stop) waits for the peer's EOF\n"
                        "  (default 5s), e.g. --close-timeout 2s");
    sub->add_option("--drain-limit", cfg->drain_limit,
                    "How much an orderly close reads and discards before it gives up and aborts\n"
                    "  (default 1M), e.g. --drain-limit 64K")
        ->type_name("BYTES")
        ->check(check_size);
    add_duration_option(
        *sub, "--idle-timeout", cfg->idle_timeout,
        "Abort a connection when nothing moves either way for this long, e.g. --idle-timeout 30s");
    add_duration_option(*sub, "--lifetime-timeout", cfg->lifetime_timeout,
                        "Abort a connection this long after it was accepted, however busy: the\n"
                        "  bound for a peer that trickles bytes, e.g. --lifetime-timeout 60s");
    sub->add_option("--max-connections", cfg->max_connections,
                    "Stop (gracefully) after this many connections; 0 = never (default),\n"
                    "  e.g. --max-connections 1")
        ->type_name("N")
        ->check(check_count_range(UINT64_MAX));
    sub->add_option("--threads", cfg->threads,
                    "Event-loop threads, 0 to 256; 0 = one per core (default), e.g. --threads 1")
        ->type_name("N")
        ->check(check_count_range(256));
    sub->add_option(
           "--backend", cfg->backend,
           "How the event loops wait for the kernel: automatic (default: io_uring where\n"
           "  usable, else epoll, saying why once), epoll, io_uring (an error where it is\n"
           "  not usable). Overrides ORDERLY_BACKEND, e.g. --backend epoll")
        ->check(CLI::IsMember({"automatic", "epoll", "io_uring"}));
    sub->add_flag(
        "--dual-stack", cfg->dual_stack,
        "On [::]:PORT, accept IPv4 clients too, e.g. orderly serve echo --dual-stack [::]:0");
    add_tls_server_options(*sub, cfg->tls);
    sub->add_flag("--report", cfg->report.report,
                  "Print each connection's close report to stderr, e.g. --report");
    sub->add_flag("--json", cfg->report.json,
                  "Print each close report as one JSON object per line on stderr, e.g. --json");
    sub->footer(std::string("Examples:\n"
                            "  orderly serve echo 127.0.0.1:7007\n"
                            "  orderly serve reply --bytes 1M --read 10 --close naive 127.0.0.1:0\n"
                            "  orderly serve discard --report [::1]:0\n"
                            "  orderly serve echo --tls-cert c/cert.pem --tls-key c/key.pem "
                            "127.0.0.1:8443\n\n") +
                exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_serve(*cfg); }; });
}

}  // namespace orderly::cli
