// W4 churn: connect, send 100 B, shutdown(write), read the echo to EOF, close; again and again,
// from 16 concurrent loops. Result: connections per second and what went wrong.
#include <fmt/format.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "output.hpp"
#include "pattern.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "workloads.hpp"

namespace load {

struct churn_slot {
    int fd = -1;
    bool connecting = false;
    bool wrote = false;  // the request went out and shutdown(SHUT_WR) was called
    bool bad = false;    // the reply differed from the request
    std::uint32_t sent = 0;
    std::uint32_t got = 0;
};

void run_churn(const options& o, double hard_deadline) {
    const std::size_t req = o.size;
    const pattern& pat = the_pattern();
    std::vector<churn_slot> slots(o.connections);
    // A client that connects thousands of times a second from one address runs out of ephemeral
    // ports (TIME_WAIT lasts 60 s and stays on our side: we send the first FIN). Rotating over a
    // few loopback source addresses multiplies the 4-tuples; all of 127/8 is local on Linux.
    std::vector<sockaddr_in> sources(o.sources);
    for (std::size_t i = 0; i < sources.size(); ++i) {
        sources[i].sin_family = AF_INET;
        sources[i].sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(i));
    }
    std::uint64_t started = 0, ok = 0, resets = 0, short_replies = 0, wrong_replies = 0,
                  connect_failures = 0, other_errors = 0;
    std::string first_failure;
    poller ep;
    char rbuf[4096];
    bool stop_starting = false;
    std::size_t active = 0;

    auto end_slot = [&](churn_slot& s) {
        close(s.fd);
        s = churn_slot{};
        --active;
    };
    auto fail = [&](churn_slot& s, int err, bool in_connect) {
        if (is_reset(err)) {
            ++resets;
        } else if (in_connect) {
            ++connect_failures;
        } else {
            ++other_errors;
        }
        if (first_failure.empty()) first_failure = errstr(err);
        end_slot(s);
    };
    auto start_slot = [&](std::size_t i) {
        churn_slot& s = slots[i];
        int fd = start_connect(o.addr, &sources[started % sources.size()]);
        ++started;
        if (fd < 0) {
            ++connect_failures;
            if (first_failure.empty()) first_failure = errstr(-fd);
            return;
        }
        s.fd = fd;
        s.connecting = true;
        ++active;
        // Edge-triggered: one wake-up when the connect completes, then one per arriving reply
        // chunk; no epoll_ctl MOD per connection.
        ep.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, i);
    };
    auto write_request = [&](churn_slot& s) {
        while (s.sent < req) {
            ssize_t w = send(s.fd, pat.at(s.sent), req - s.sent, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return true;  // the next EPOLLOUT edge continues
                fail(s, errno, false);
                return false;
            }
            s.sent += static_cast<std::uint32_t>(w);
        }
        if (shutdown(s.fd, SHUT_WR) != 0) {
            fail(s, errno, false);
            return false;
        }
        s.wrote = true;
        return true;
    };
    auto read_reply = [&](churn_slot& s) {
        for (;;) {
            ssize_t r = recv(s.fd, rbuf, sizeof rbuf, 0);
            if (r > 0) {
                auto got = static_cast<std::size_t>(r);
                if (s.got + got > req || !pat.matches(s.got, rbuf, got)) s.bad = true;
                s.got += static_cast<std::uint32_t>(got);
                continue;
            }
            if (r == 0) {
                if (s.bad || s.got > req) {
                    ++wrong_replies;
                } else if (s.got < req) {
                    ++short_replies;
                } else {
                    ++ok;
                }
                end_slot(s);
                return;
            }
            if (errno == EAGAIN) return;
            fail(s, errno, false);
            return;
        }
    };

    auto before = read_tcp_counters();
    double t0 = now_s();
    double end = t0 + o.seconds;
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
            const epoll_event& e = ep.event(k);
            churn_slot& s = slots[e.data.u64];
            if (s.fd < 0) continue;
            if (s.connecting) {
                if (!(e.events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
                int err = socket_error(s.fd);
                if (err != 0) {
                    fail(s, err, true);
                    continue;
                }
                s.connecting = false;
            }
            if (!s.wrote && !write_request(s)) continue;
            if (s.wrote && (e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                read_reply(s);
            }
        }
        if (!stop_starting) {
            for (std::size_t i = 0; i < slots.size(); ++i) {
                if (slots[i].fd < 0 && !(o.count && started >= o.count)) start_slot(i);
            }
        }
    }
    double dt = now_s() - t0;
    for (auto& s : slots) {
        if (s.fd >= 0) close(s.fd);
    }
    auto after = read_tcp_counters();
    out().num("elapsed_s", dt);
    out().integer("connections_started", started);
    out().integer("connections_ok", ok);
    out().num("connections_per_s", static_cast<double>(ok) / dt);
    out().integer("resets", resets);
    out().integer("short_replies", short_replies);
    out().integer("wrong_replies", wrong_replies);
    out().integer("connect_failures", connect_failures);
    out().integer("other_errors", other_errors);
    if (!first_failure.empty()) out().str("first_failure", first_failure);
    put_tcp_deltas(before, after);
    if (ok == 0) set_error("no connection completed");
}

}  // namespace load
