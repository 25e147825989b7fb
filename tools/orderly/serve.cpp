// orderly serve echo|discard|reply HOST:PORT: small servers for people debugging clients, on the
// event layer's server (one loop per core, io_uring or epoll), plain TCP or TLS (--tls-cert). Each
// mode is a set of connection callbacks; over TLS they see plaintext, and the peer's EOF is its
// close_notify.

#include "serve.hpp"

#include <fmt/core.h>
#include <pthread.h>

#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "orderly/event/server.hpp"
#include "orderly/tls/tls_filter.hpp"
#include "request_reader.hpp"
#include "serve_backend.hpp"
#include "tls_options.hpp"

namespace orderly::cli {
namespace {

enum class serve_mode { echo, discard, reply };
enum class reply_close { orderly, naive, abort };

// Byte i of every reply, so clients can check what they received: 63 letters then a newline.
char reply_byte(std::uint64_t i) noexcept {
    const auto col = i % 64;
    return col == 63 ? '\n' : static_cast<char>('a' + static_cast<char>(col % 26));
}

// The reply body is written in blocks of this size (a multiple of 64, so the pattern continues
// across blocks); the next block goes out when the previous one has left our buffer.
constexpr std::size_t reply_block = 256U << 10;

// What the loops share with the main thread. Callbacks run on several loop threads.
struct serve_shared {
    serve_mode mode = serve_mode::echo;
    std::uint64_t reply_bytes = 0;
    std::optional<std::uint64_t> read_bytes;
    reply_close close = reply_close::orderly;
    close_options graceful;
    std::uint64_t max_connections = 0;
    report_options report;
    std::vector<char> block;  // the first reply_block bytes of the pattern (read-only)

    std::mutex mu;
    std::condition_variable changed;
    std::uint64_t opened = 0;
    std::uint64_t closed = 0;
    std::map<std::string, std::size_t> outcomes;  // how connections ended, for the summary
};

// One connection's progress, attached as its context.
struct conn_state {
    std::string label;
    request_reader request{std::nullopt};  // reply mode: --read or until EOF
    std::uint64_t reply_sent = 0;
    std::uint64_t received = 0;  // bytes given to on_data (over TLS: plaintext)
    bool replying = false;
    bool counted = true;  // false for connections refused beyond --max-connections
};

conn_state& state_of(connection& c) {
    return *static_cast<conn_state*>(c.context().get());
}

// Ends a reply connection the way --close says, once the whole body is out of our buffer (a plain
// close() or abort() would otherwise drop the rest of it before the kernel saw it).
void finish_reply(connection& c, const serve_shared& sh) {
    switch (sh.close) {
        case reply_close::naive:
            c.close();
            return;  // the bug, on purpose: unread bytes mean RST
        case reply_close::abort:
            c.abort();
            return;
        case reply_close::orderly:
            c.close_gracefully(sh.graceful);
            return;
    }
}

// Writes reply blocks while our buffer is empty; on_drained calls it again for the next block.
void pump_reply(connection& c, const serve_shared& sh) {
    conn_state& st = state_of(c);
    while (st.reply_sent < sh.reply_bytes && c.buffered_bytes() == 0) {
        const auto len = static_cast<std::size_t>(
            std::min<std::uint64_t>(sh.block.size(), sh.reply_bytes - st.reply_sent));
        if (!c.write(std::string_view(sh.block.data(), len))) return;  // ended; on_closed follows
        st.reply_sent += len;
    }
    if (st.reply_sent == sh.reply_bytes && c.buffered_bytes() == 0) finish_reply(c, sh);
}

void start_reply(connection& c, const serve_shared& sh) {
    conn_state& st = state_of(c);
    if (st.replying) return;
    st.replying = true;
    // With --read, what the client sent beyond it stays unread in the kernel: exactly the
    // condition under which a plain close() resets the connection.
    if (sh.read_bytes) c.pause_reading();
    pump_reply(c, sh);
}

// A connection's state, made by the first callback that needs it. That is on_open, but nothing
// here depends on when on_open runs (at accept, or over TLS only after the handshake): a callback
// that came first makes the same state, and a connection that ends before any callback (a failed
// handshake) has none, which on_closed knows. Beyond --max-connections it is refused: ended in
// order at once, not counted.
conn_state& open_state(connection& c, serve_shared& sh) {
    if (c.context()) return state_of(c);
    auto st = std::make_shared<conn_state>();
    st->label = c.peer_endpoint().to_string();
    st->request = request_reader(sh.read_bytes);
    {
        std::lock_guard lock(sh.mu);
        if (sh.max_connections != 0 && sh.opened >= sh.max_connections) {
            st->counted = false;
        } else {
            ++sh.opened;
        }
    }
    c.set_context(st);
    if (!st->counted) c.close_gracefully(sh.graceful);
    return *st;
}

connection_callbacks make_callbacks(const std::shared_ptr<serve_shared>& shared) {
    serve_shared* sh = shared.get();  // the server is stopped before `shared` goes away
    connection_callbacks cb;
    cb.on_open = [sh](connection& c) {
        conn_state& st = open_state(c, *sh);
        if (st.counted && sh->mode == serve_mode::reply && st.request.complete()) {
            start_reply(c, *sh);  // --read 0: there is no request to wait for
        }
    };
    cb.on_data = [sh](connection& c, std::span<const std::byte> data) {
        conn_state& st = open_state(c, *sh);
        if (!st.counted) return;  // refused: ending in order
        st.received += data.size();
        switch (sh->mode) {
            case serve_mode::echo:
                (void)c.write(data);
                return;
            case serve_mode::discard:
                return;
            case serve_mode::reply: {
                if (state_of(c).request.feed(data.size()) == request_reader::step::complete) {
                    start_reply(c, *sh);
                }
                return;
            }
        }
    };
    cb.on_peer_eof = [sh](connection& c) {
        if (!open_state(c, *sh).counted) return;
        // The client is done sending; we may still owe it bytes.
        if (sh->mode == serve_mode::reply) {
            (void)state_of(c).request.peer_eof();
            start_reply(c, *sh);  // no-op when --read already completed the request
        } else {
            c.close_gracefully(sh->graceful);  // flushes the echo, then FIN
        }
    };
    cb.on_drained = [sh](connection& c) {
        if (sh->mode == serve_mode::reply && open_state(c, *sh).replying) pump_reply(c, *sh);
    };
    cb.on_closed = [sh](connection& c, const close_report& r) {
        const conn_state* st = static_cast<const conn_state*>(c.context().get());
        if (st != nullptr && !st->counted) return;
        // Over TLS a connection whose handshake failed may never have had on_open (and so no
        // state): it is counted all the same, and said, since a client that cannot handshake is
        // what someone debugging it wants to know about.
        const std::string label = st != nullptr ? st->label : r.peer.to_string();
        {
            std::lock_guard lock(sh->mu);
            if (r.error == make_error_code(errc::tls_handshake_failed)) {
                print_error(fmt::format("TLS handshake with {} failed: {}", label,
                                        r.tls ? r.tls->detail : std::string("no detail")));
            }
            print_report(sh->report, r, label);
            if (sh->mode == serve_mode::discard) {
                // Over TLS the report counts TCP bytes (records); the client sent plaintext.
                const std::uint64_t got = st != nullptr ? st->received : 0;
                if (r.tls) {
                    fmt::print(stderr, "discarded {} B from {} ({} B of TLS records)\n", got, label,
                               r.bytes_received);
                } else {
                    fmt::print(stderr, "discarded {} B from {}\n", r.bytes_received, label);
                }
            }
            ++sh->outcomes[std::string(to_string(r.outcome))];
            ++sh->closed;
        }
        sh->changed.notify_all();
    };
    return cb;
}

}  // namespace

int run_serve(const serve_config& cfg) {
    ignore_sigpipe();
    install_stop_signals();

    // The certificate and key are checked before anything else happens: a pair that cannot be
    // used is a usage error naming both files (the same message as orderly listen's).
    auto tls = make_tls_server_context(cfg.tls);
    if (tls.code != exit_ok) return tls.code;

    const backend_choice backend = choose_backend(cfg.backend);
    if (!backend.error.empty()) {
        print_error(backend.error);
        return exit_failure;
    }

    auto shared = std::make_shared<serve_shared>();
    serve_shared& sh = *shared;
    sh.report = cfg.report;
    sh.mode = cfg.mode == "echo"      ? serve_mode::echo
              : cfg.mode == "discard" ? serve_mode::discard
                                      : serve_mode::reply;
    sh.reply_bytes = *parse_size(cfg.bytes);
    if (!cfg.read_limit.empty()) sh.read_bytes = parse_size(cfg.read_limit);
    sh.close = cfg.close_mode == "naive"   ? reply_close::naive
               : cfg.close_mode == "abort" ? reply_close::abort
                                           : reply_close::orderly;
    sh.graceful.timeout = *parse_duration(cfg.close_timeout);
    sh.graceful.drain_limit = *parse_size(cfg.drain_limit);
    sh.max_connections = cfg.max_connections;
    sh.block.resize(static_cast<std::size_t>(std::min<std::uint64_t>(sh.reply_bytes, reply_block)));
    for (std::size_t i = 0; i < sh.block.size(); ++i)
        sh.block[i] = reply_byte(i);

    listen_options lo;
    lo.replace_unix_socket_file = true;
    if (cfg.dual_stack) lo.v6_only = false;
    auto l = orderly::listen(cfg.where, lo);
    if (!l) {
        print_error(l.error().message());
        const exit_code code = exit_code_for(l.error().code);
        return code == exit_usage || code == exit_unreachable ? code : exit_failure;
    }

    server_options so;
    so.threads = cfg.threads;
    so.loop.backend = backend.backend;
    so.stop_drain_limit = sh.graceful.drain_limit;
    if (!cfg.idle_timeout.empty()) so.connection.idle_timeout = *parse_duration(cfg.idle_timeout);
    if (!cfg.lifetime_timeout.empty())
        so.connection.lifetime_timeout = *parse_duration(cfg.lifetime_timeout);
    so.log = [](std::string_view line) { print_error(line); };
    if (tls.ctx) {
        // Each accepted connection handshakes under its own tls_filter; the handshake is bounded
        // like listen's: by --idle-timeout when given, else the library's 10 s.
        so.filter = tls_filter::server_factory(std::move(*tls.ctx));
        if (!cfg.idle_timeout.empty())
            so.connection.handshake_timeout = *parse_duration(cfg.idle_timeout);
    }

    // The loop threads inherit a mask without SIGINT/SIGTERM, so the stop signal always reaches
    // this thread, which turns it into a graceful stop.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigset_t old_mask;
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    auto srv = server::start(std::move(*l), make_callbacks(shared), so);
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (!srv) {
        print_error(srv.error().message());
        return exit_failure;
    }
    fmt::print(stderr, "listening on {}\n", (*srv)->local_endpoint().to_string());
    if (backend.fell_back) fmt::print(stderr, "backend {}\n", automatic_backend_reason());
    (void)std::fflush(stderr);

    {
        std::unique_lock lock(sh.mu);
        while (!stop_requested() && !(sh.max_connections != 0 && sh.closed >= sh.max_connections)) {
            // The signal handler cannot notify a condition variable: poll its flag.
            sh.changed.wait_for(lock, std::chrono::milliseconds(50));
        }
    }
    // Stop accepting; connections in progress flush what they owe, FIN, drain, close; the rest is
    // aborted at the deadline (their reports say timed_out).
    (void)(*srv)->stop_gracefully(deadline::after(sh.graceful.timeout));
    srv->reset();

    std::lock_guard lock(sh.mu);
    std::string summary;
    for (const auto& [outcome, count] : sh.outcomes) {
        summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", outcome, count);
    }
    fmt::print(stderr, "served {} connection{}{}{}\n", sh.closed, sh.closed == 1 ? "" : "s",
               summary.empty() ? "" : ": ", summary);
    return exit_ok;
}

}  // namespace orderly::cli
