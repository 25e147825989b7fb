// W4 churn over TLS (--tls --workload churn): connect, full handshake, send 100 B, close_notify
// and FIN, read the echo to the server's close_notify, then read to its FIN, close; from 16
// concurrent loops. Connections per second (each one a full TLS 1.3 handshake: no resumption)
// and what went wrong: resets, short or wrong echoes, a FIN without close_notify (truncated).
#include <fmt/format.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "output.hpp"
#include "pattern.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "tls_client.hpp"

namespace load {

namespace {

enum class phase : std::uint8_t { free, connecting, handshake, sending, reading, draining };

struct slot {
    int fd = -1;
    SSL* ssl = nullptr;
    phase ph = phase::free;
    std::uint32_t sent = 0, got = 0;
    bool bad = false;
};

}  // namespace

void run_tls_churn(const options& o, double hard_deadline) {
    SSL_CTX* ctx = tls_client_ctx();
    if (!ctx) return;
    const std::size_t req = o.size;
    const pattern& pat = the_pattern();
    std::vector<slot> slots(o.connections);
    std::vector<sockaddr_in> sources(o.sources);  // see churn.cpp: the TIME_WAITs are ours
    for (std::size_t i = 0; i < sources.size(); ++i) {
        sources[i].sin_family = AF_INET;
        sources[i].sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(i));
    }
    std::uint64_t started = 0, ok = 0, resets = 0, short_replies = 0, wrong = 0, truncated = 0,
                  failures = 0;
    std::string first_failure, why;
    poller ep;
    char rbuf[16384];
    std::size_t active = 0;
    bool info_done = false;

    auto end_slot = [&](slot& s) {
        SSL_free(s.ssl);
        close(s.fd);
        s = slot{};
        --active;
    };
    auto fail = [&](slot& s, const std::string& what) {
        if (what.find("(reset)") != std::string::npos) {
            ++resets;
        } else {
            ++failures;
        }
        if (first_failure.empty()) first_failure = what;
        end_slot(s);
    };
    auto start_slot = [&](std::size_t i) {
        slot& s = slots[i];
        int fd = start_connect(o.addr, &sources[started % sources.size()]);
        ++started;
        if (fd < 0) {
            ++failures;
            if (first_failure.empty()) first_failure = std::string("connect: ") + errstr(-fd);
            return;
        }
        s.fd = fd;
        s.ph = phase::connecting;
        ++active;
        ep.add(fd, EPOLLOUT, i);
    };
    // Moves a slot as far as it goes; returns what to wait for (0: it ended).
    auto step = [&](slot& s) -> std::uint32_t {
        for (;;) {
            switch (s.ph) {
                case phase::free:
                    return 0;
                case phase::connecting: {
                    if (int err = socket_error(s.fd); err != 0) {
                        fail(s, std::string("connect: ") + errstr(err));
                        return 0;
                    }
                    set_nodelay(s.fd);
                    s.ssl = SSL_new(ctx);
                    if (!s.ssl || SSL_set_fd(s.ssl, s.fd) != 1) return fail(s, "SSL_new"), 0;
                    s.ph = phase::handshake;
                    break;
                }
                case phase::handshake: {
                    int r = SSL_connect(s.ssl);
                    if (r != 1) {
                        std::uint32_t w = tls_wants(s.ssl, r, why);
                        if (!w) return fail(s, "handshake: " + why), 0;
                        return w;
                    }
                    if (!info_done) put_tls_info(s.ssl), info_done = true;
                    s.ph = phase::sending;
                    break;
                }
                case phase::sending: {
                    while (s.sent < req) {
                        int k = SSL_write(s.ssl, pat.at(s.sent), static_cast<int>(req - s.sent));
                        if (k <= 0) {
                            std::uint32_t w = tls_wants(s.ssl, k, why);
                            if (!w) return fail(s, "SSL_write: " + why), 0;
                            return w;
                        }
                        s.sent += static_cast<std::uint32_t>(k);
                    }
                    int r = SSL_shutdown(s.ssl);  // our close_notify; TLS 1.3 may still read
                    if (r < 0) {
                        std::uint32_t w = tls_wants(s.ssl, r, why);
                        if (!w) return fail(s, "close_notify: " + why), 0;
                        return w;
                    }
                    (void)shutdown(s.fd, SHUT_WR);
                    s.ph = phase::reading;
                    break;
                }
                case phase::reading: {
                    int n = SSL_read(s.ssl, rbuf, sizeof rbuf);
                    if (n > 0) {
                        auto got = static_cast<std::size_t>(n);
                        if (s.got + got > req || !pat.matches(s.got, rbuf, got)) s.bad = true;
                        s.got += static_cast<std::uint32_t>(got);
                        break;
                    }
                    int e = SSL_get_error(s.ssl, n);
                    if (e == SSL_ERROR_ZERO_RETURN) {
                        s.ph = phase::draining;
                        break;
                    }
                    int saved = errno;
                    // OpenSSL 3 says a FIN without close_notify as SSL_ERROR_SSL with this
                    // reason (1.1.1 said SSL_ERROR_SYSCALL with errno 0).
                    const bool eof =
                        (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_last_error()) ==
                                                   SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
                        (e == SSL_ERROR_SYSCALL && saved == 0);
                    std::uint32_t w = tls_wants(s.ssl, n, why);
                    if (w) return w;
                    if (eof) {
                        ++truncated;  // FIN without close_notify
                        if (first_failure.empty()) first_failure = "FIN without close_notify";
                        end_slot(s);
                        return 0;
                    }
                    fail(s, "SSL_read: " + why + (is_reset(saved) ? " (reset)" : ""));
                    return 0;
                }
                case phase::draining: {
                    ssize_t r = recv(s.fd, rbuf, sizeof rbuf, 0);
                    if (r > 0) continue;
                    if (r < 0 && errno == EAGAIN) return EPOLLIN;
                    if (r < 0)
                        return fail(s, std::string("recv: ") + errstr(errno) + " (reset)"), 0;
                    if (s.bad || s.got > req) {
                        ++wrong;
                    } else if (s.got < req) {
                        ++short_replies;
                    } else {
                        ++ok;
                    }
                    end_slot(s);
                    return 0;
                }
            }
        }
    };

    auto before = read_tcp_counters();
    double t0 = now_s(), end = t0 + o.seconds;
    bool stop_starting = false;
    for (std::size_t i = 0; i < slots.size(); ++i)
        start_slot(i);
    for (;;) {
        double t = now_s();
        if (!stop_starting && (t >= end || (o.count && started >= o.count))) stop_starting = true;
        if (stop_starting && active == 0) break;
        if (t > hard_deadline) {
            set_error(fmt::format("hard cap reached with {} connections still open", active));
            break;
        }
        int n = ep.wait(50);
        for (int k = 0; k < n; ++k) {
            std::size_t i = ep.event(k).data.u64;
            if (slots[i].ph == phase::free) continue;
            std::uint32_t w = step(slots[i]);
            if (w) ep.mod(slots[i].fd, w, i);
        }
        for (std::size_t i = 0; !stop_starting && i < slots.size(); ++i) {
            if (slots[i].ph == phase::free && !(o.count && started >= o.count)) start_slot(i);
        }
    }
    double dt = now_s() - t0;
    for (auto& s : slots) {
        if (s.ph != phase::free) end_slot(s);
    }
    SSL_CTX_free(ctx);
    auto after = read_tcp_counters();
    out().num("elapsed_s", dt);
    out().integer("connections_started", started);
    out().integer("connections_ok", ok);
    out().num("connections_per_s", static_cast<double>(ok) / dt);
    out().integer("resets", resets);
    out().integer("short_replies", short_replies);
    out().integer("wrong_replies", wrong);
    out().integer("truncated", truncated);
    out().integer("other_failures", failures);
    if (!first_failure.empty()) out().str("first_failure", first_failure);
    put_tcp_deltas(before, after);
    if (ok == 0) set_error("no connection completed");
}

}  // namespace load
