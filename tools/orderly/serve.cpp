// orderly serve echo|discard|reply HOST:PORT: small servers for people debugging clients. One
// thread per connection for now; serve_connection() is what a connection does, whatever runs it.

#include "serve.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cli.hpp"

namespace orderly::cli {

char reply_byte(std::uint64_t i) noexcept {
    const auto col = i % 64;
    return col == 63 ? '\n' : static_cast<char>('a' + static_cast<char>(col % 26));
}

namespace {

constexpr auto slice = std::chrono::milliseconds(100);

// Receives with short waits so that a stop request or the idle timeout is noticed.
// Returns the byte count (0 at EOF) or an error (errc::timed_out after the idle timeout,
// errc::aborted when stopping).
result<std::size_t> recv_some(stream_socket& s, std::span<char> buf, const serve_settings& st,
                              const std::atomic<bool>& stopping) {
    const auto started = clock::now();
    for (;;) {
        // Checked before every read, so that a peer that never pauses cannot keep us taking work.
        if (stopping.load()) return fail(make_error_code(errc::aborted));
        auto n = s.recv(buf, deadline::after(slice));
        if (n || n.error() != make_error_code(errc::timed_out)) return n;
        if (st.idle_timeout && clock::now() - started >= *st.idle_timeout) return n;
    }
}

// Sends everything, waiting in short slices so that a client that stops reading cannot hold a
// graceful stop forever: after the stop request it gets graceful.timeout, then errc::timed_out.
// The idle timeout bounds the time without progress.
transfer_result send_all_some(stream_socket& s, std::string_view data, const serve_settings& st,
                              const std::atomic<bool>& stopping) {
    transfer_result r;
    auto progress = clock::now();
    std::optional<clock::time_point> stop_seen;
    while (r.bytes < data.size()) {
        auto n = s.send(data.substr(r.bytes), deadline::after(slice));
        if (n) {
            r.bytes += *n;
            progress = clock::now();
            continue;
        }
        if (n.error() != make_error_code(errc::timed_out)) {
            r.error = n.error();
            return r;
        }
        const auto now = clock::now();
        if (stopping.load() && !stop_seen) stop_seen = now;
        if ((stop_seen && now - *stop_seen >= st.graceful.timeout) ||
            (st.idle_timeout && now - progress >= *st.idle_timeout)) {
            r.error = n.error();
            return r;
        }
    }
    return r;
}

// Ends a connection that failed part-way: after a reset there is nobody to talk to; after a
// timeout the peer must learn it was not an orderly end.
close_report end_after_error(stream_socket& s, std::error_code ec) {
    close_report r = s.abort();
    if (ec == make_error_code(errc::peer_reset))
        r.outcome = close_outcome::peer_reset;
    else if (ec == make_error_code(errc::timed_out))
        r.outcome = close_outcome::timed_out;
    r.error = ec;
    return r;
}

close_report serve_echo(stream_socket& s, const serve_settings& st,
                        const std::atomic<bool>& stopping) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto n = recv_some(s, buf, st, stopping);
        if (!n) {
            if (n.error() == make_error_code(errc::aborted)) break;  // stopping: end in order
            return end_after_error(s, n.error());
        }
        if (*n == 0) break;  // peer EOF: everything echoed, now our FIN
        auto sent = send_all_some(s, std::string_view(buf.data(), *n), st, stopping);
        if (!sent.ok()) return end_after_error(s, sent.error);
    }
    return s.close_gracefully(st.graceful);
}

close_report serve_discard(stream_socket& s, const serve_settings& st,
                           const std::atomic<bool>& stopping) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto n = recv_some(s, buf, st, stopping);
        if (!n) {
            if (n.error() == make_error_code(errc::aborted)) break;
            return end_after_error(s, n.error());
        }
        if (*n == 0) break;
    }
    return s.close_gracefully(st.graceful);
}

close_report serve_reply(stream_socket& s, const serve_settings& st,
                         const std::atomic<bool>& stopping) {
    std::vector<char> buf(64 * 1024);
    std::uint64_t got = 0;
    for (;;) {
        std::size_t want = buf.size();
        if (st.read_bytes) {
            if (got >= *st.read_bytes) break;
            want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *st.read_bytes - got));
        }
        auto n = recv_some(s, std::span<char>(buf.data(), want), st, stopping);
        if (!n) {
            if (n.error() == make_error_code(errc::aborted)) return s.close_gracefully(st.graceful);
            return end_after_error(s, n.error());
        }
        if (*n == 0) break;
        got += *n;
    }

    std::vector<char> chunk(
        static_cast<std::size_t>(std::min<std::uint64_t>(st.reply_bytes, 1 << 20)));
    for (std::size_t i = 0; i < chunk.size(); ++i)
        chunk[i] = reply_byte(i);
    std::uint64_t sent = 0;
    while (sent < st.reply_bytes) {
        // Chunks are a multiple of 64 bytes long (or the whole reply), so the pattern continues.
        const auto len =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), st.reply_bytes - sent));
        auto r = send_all_some(s, std::string_view(chunk.data(), len), st, stopping);
        if (!r.ok()) return end_after_error(s, r.error);
        sent += len;
    }

    switch (st.close) {
        case reply_close::naive:
            return s.close();  // the bug, on purpose: unread bytes mean RST
        case reply_close::abort:
            return s.abort();
        case reply_close::orderly:
            break;
    }
    return s.close_gracefully(st.graceful);
}

}  // namespace

close_report serve_connection(stream_socket s, const serve_settings& settings,
                              const std::atomic<bool>& stopping) {
    switch (settings.mode) {
        case serve_mode::echo:
            return serve_echo(s, settings, stopping);
        case serve_mode::discard:
            return serve_discard(s, settings, stopping);
        case serve_mode::reply:
            return serve_reply(s, settings, stopping);
    }
    return s.close();
}

namespace {

struct serve_config {
    std::string mode;
    std::string where;
    std::string bytes = "0";
    std::string read_limit;
    std::string close_mode = "orderly";
    std::string close_timeout = "5s";
    std::string drain_limit = "1M";
    std::string idle_timeout;
    std::uint64_t max_connections = 0;
    bool dual_stack = false;
    report_options report;
};

// What the connection threads share with the accept loop. Held by shared_ptr so that a thread
// finishing after the summary was printed still has it.
struct serve_shared {
    serve_settings settings;
    report_options report;
    std::atomic<bool> stopping{false};
    std::mutex mu;
    std::condition_variable idle;
    std::size_t active = 0;
    std::size_t total = 0;
    std::map<std::string, std::size_t> outcomes;  // how connections ended, for the summary
};

int run_serve(const serve_config& cfg) {
    ignore_sigpipe();
    install_stop_signals();

    auto shared = std::make_shared<serve_shared>();
    shared->report = cfg.report;
    serve_settings& st = shared->settings;
    st.mode = cfg.mode == "echo"      ? serve_mode::echo
              : cfg.mode == "discard" ? serve_mode::discard
                                      : serve_mode::reply;
    st.reply_bytes = *parse_size(cfg.bytes);
    if (!cfg.read_limit.empty()) st.read_bytes = parse_size(cfg.read_limit);
    st.close = cfg.close_mode == "naive"   ? reply_close::naive
               : cfg.close_mode == "abort" ? reply_close::abort
                                           : reply_close::orderly;
    st.graceful.timeout = *parse_duration(cfg.close_timeout);
    st.graceful.drain_limit = *parse_size(cfg.drain_limit);
    if (!cfg.idle_timeout.empty()) st.idle_timeout = parse_duration(cfg.idle_timeout);

    server_options so;
    so.dual_stack = cfg.dual_stack;
    so.replace_unix_socket_file = true;
    auto l = orderly::listen(cfg.where, so);
    if (!l) {
        print_error(l.error().message());
        if (exit_code_for(l.error().code) == exit_usage) return exit_usage;
        return l.error().code == make_error_code(errc::resolve) ? exit_unreachable : exit_failure;
    }
    fmt::print(stderr, "listening on {}\n", l->local_endpoint().to_string());
    std::fflush(stderr);

    serve_shared& stats = *shared;
    int code = exit_ok;
    for (;;) {
        if (stop_requested()) break;
        if (cfg.max_connections != 0) {
            std::lock_guard lock(stats.mu);
            if (stats.total >= cfg.max_connections) break;
        }
        auto s = l->accept(deadline::after(std::chrono::milliseconds(200)));
        if (!s) {
            if (s.error() == make_error_code(errc::timed_out)) continue;
            const auto ec = s.error();
            if (ec == std::errc::too_many_files_open ||
                ec == std::errc::too_many_files_open_in_system) {
                // Descriptor exhaustion: leave new clients waiting in the backlog until one of
                // ours ends, rather than dropping them.
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                continue;
            }
            print_error(fmt::format("accept: {}", ec.message()));
            code = exit_failure;
            break;
        }
        {
            std::lock_guard lock(stats.mu);
            ++stats.active;
            ++stats.total;
        }
        auto peer = s->peer_endpoint();
        std::string label = peer ? peer->to_string() : "?";
        std::thread([sock = std::move(*s), label = std::move(label), shared]() mutable {
            const close_report r =
                serve_connection(std::move(sock), shared->settings, shared->stopping);
            {
                std::lock_guard lock(shared->mu);
                print_report(shared->report, r, label);
                if (shared->settings.mode == serve_mode::discard) {
                    fmt::print(stderr, "discarded {} B from {}\n", r.bytes_received, label);
                }
                ++shared->outcomes[std::string(to_string(r.outcome))];
                --shared->active;
            }
            shared->idle.notify_all();
        }).detach();
    }

    // No new connections. After SIGINT/SIGTERM the ones in progress are asked to wrap up (stop
    // taking work, flush, close in order); after --max-connections they simply finish, unless a
    // signal comes while we wait.
    l->close();
    std::unique_lock lock(stats.mu);
    while (stats.active != 0) {
        if (stop_requested()) stats.stopping.store(true);
        stats.idle.wait_for(lock, std::chrono::milliseconds(100));
    }
    std::string summary;
    for (const auto& [outcome, count] : stats.outcomes) {
        summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", outcome, count);
    }
    fmt::print(stderr, "served {} connection{}{}{}\n", stats.total, stats.total == 1 ? "" : "s",
               summary.empty() ? "" : ": ", summary);
    return code;
}

}  // namespace

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
                    "Where to listen: HOST:PORT, [v6]:PORT or unix:/path; port 0 = any free port")
        ->required();
    sub->add_option("--bytes", cfg->bytes,
                    "reply: how many bytes to send (default 0; K, M, G suffixes), e.g. --bytes 1M")
        ->type_name("BYTES")
        ->check(check_size);
    sub->add_option("--read", cfg->read_limit,
                    "reply: read only this many request bytes instead of reading until EOF,\n"
                    "  e.g. --read 100 (with --close naive this reproduces the lost reply)")
        ->type_name("BYTES")
        ->check(check_size);
    sub->add_option("--close", cfg->close_mode,
                    "reply: how to end after the reply:\n"
                    "  orderly (default) shutdown(write), drain the peer to EOF, close\n"
                    "  naive   plain close(): unread request bytes make Linux send RST and the\n"
                    "          client can lose the end of the reply (the bug, on purpose)\n"
                    "  abort   SO_LINGER{1,0}: RST at once\n"
                    "  e.g. --close naive")
        ->check(CLI::IsMember({"orderly", "naive", "abort"}));
    sub->add_option("--close-timeout", cfg->close_timeout,
                    "How long an orderly close (and a graceful stop) waits for the peer's EOF\n"
                    "  (default 5s), e.g. --close-timeout 2s")
        ->type_name("DURATION")
        ->check(check_duration);
    sub->add_option("--drain-limit", cfg->drain_limit,
                    "How much an orderly close reads and discards before it gives up and aborts\n"
                    "  (default 1M), e.g. --drain-limit 64K")
        ->type_name("BYTES")
        ->check(check_size);
    sub->add_option(
           "--idle-timeout", cfg->idle_timeout,
           "Abort a connection when nothing arrives for this long, e.g. --idle-timeout 30s")
        ->type_name("DURATION")
        ->check(check_duration);
    sub->add_option("--max-connections", cfg->max_connections,
                    "Stop (gracefully) after this many connections; 0 = never (default),\n"
                    "  e.g. --max-connections 1")
        ->type_name("N");
    sub->add_flag(
        "--dual-stack", cfg->dual_stack,
        "On [::]:PORT, accept IPv4 clients too, e.g. orderly serve echo --dual-stack [::]:0");
    sub->add_flag("--report", cfg->report.report,
                  "Print each connection's close report to stderr, e.g. --report");
    sub->add_flag("--json", cfg->report.json,
                  "Print each close report as one JSON object per line on stderr, e.g. --json");
    sub->footer(std::string("Examples:\n"
                            "  orderly serve echo 127.0.0.1:7007\n"
                            "  orderly serve reply --bytes 1M --read 10 --close naive 127.0.0.1:0\n"
                            "  orderly serve discard --report [::1]:0\n\n") +
                exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_serve(*cfg); }; });
}

}  // namespace orderly::cli
