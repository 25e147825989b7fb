// W1 latency, W2 pingpong and W3 bulk over TLS (--tls). The same measurements as latency.cpp,
// pingpong.cpp and bulk.cpp; the connections are set up (connect and handshake) one after the
// other before the measurement, then run non-blocking on one epoll set.
#include <fmt/format.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "output.hpp"
#include "pattern.hpp"
#include "proc.hpp"
#include "sys.hpp"
#include "tls_client.hpp"

namespace load {

namespace {

struct tconn {
    int fd = -1;
    SSL* ssl = nullptr;
    std::uint32_t interest = EPOLLIN;
    std::uint32_t unsent = 0;  // bytes of the current message SSL_write has not taken
    std::uint32_t got = 0;     // bytes of its echo read so far
    std::int64_t t_send = 0;
};

// Blocking-style set-up of one connection: connect and handshake, with poll() for the waits.
bool open_tls(SSL_CTX* ctx, const options& o, tconn& c) {
    c.fd = start_connect(o.addr, nullptr);
    if (c.fd < 0) {
        set_error(fmt::format("connect: {}", errstr(-c.fd)));
        return false;
    }
    pollfd p{c.fd, POLLOUT, 0};
    int err = poll(&p, 1, 5000) == 1 ? socket_error(c.fd) : ETIMEDOUT;
    if (err != 0) {
        set_error(fmt::format("connect: {}", errstr(err)));
        return false;
    }
    set_nodelay(c.fd);
    c.ssl = SSL_new(ctx);
    if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
        set_error("SSL_new failed");
        return false;
    }
    double give_up = now_s() + 5;
    for (;;) {
        int r = SSL_connect(c.ssl);
        if (r == 1) return true;
        std::string why;
        std::uint32_t w = tls_wants(c.ssl, r, why);
        if (!w || now_s() > give_up) {
            set_error("TLS handshake: " + (w ? std::string("timed out after 5 s") : why));
            return false;
        }
        pollfd q{c.fd, static_cast<short>(w == EPOLLIN ? POLLIN : POLLOUT), 0};
        (void)poll(&q, 1, 100);
    }
}

void close_all(std::vector<tconn>& cs) {
    for (auto& c : cs) {
        SSL_free(c.ssl);
        if (c.fd >= 0) close(c.fd);
    }
}

// Ping-pong on one connection as far as it goes without waiting. Returns false on failure.
bool drive(tconn& c, poller& ep, std::size_t i, std::size_t size, const char* msg, char* buf,
           std::size_t buf_size, bool verify, std::uint64_t& messages,
           std::vector<std::int64_t>* samples) {
    std::string why;
    for (;;) {
        while (c.unsent > 0) {
            int k = SSL_write(c.ssl, msg + (size - c.unsent), static_cast<int>(c.unsent));
            if (k <= 0) {
                std::uint32_t w = tls_wants(c.ssl, k, why);
                if (!w) return set_error("SSL_write: " + why), false;
                if (w != c.interest) ep.mod(c.fd, w, i), c.interest = w;
                return true;
            }
            c.unsent -= static_cast<std::uint32_t>(k);
        }
        int n = SSL_read(c.ssl, buf, static_cast<int>(buf_size));
        if (n <= 0) {
            std::uint32_t w = tls_wants(c.ssl, n, why);
            if (!w) return set_error("SSL_read: " + why), false;
            if (w != c.interest) ep.mod(c.fd, w, i), c.interest = w;
            return true;
        }
        auto got = static_cast<std::uint32_t>(n);
        if (c.got + got > size || (verify && std::memcmp(msg + c.got, buf, got) != 0)) {
            return set_error("the echo differs from what was sent"), false;
        }
        c.got += got;
        if (c.got == size) {
            ++messages;
            std::int64_t t = now_ns();
            if (samples) samples->push_back(t - c.t_send);
            c.got = 0;
            c.unsent = static_cast<std::uint32_t>(size);
            c.t_send = t;
        }
    }
}

void put_percentiles(std::vector<std::int64_t>& samples) {
    out().integer("round_trips", static_cast<std::uint64_t>(samples.size()));
    if (samples.empty()) return set_error("no round trip completed");
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        auto i = static_cast<std::size_t>(std::lround(p * static_cast<double>(samples.size() - 1)));
        return static_cast<double>(samples[i]) / 1000.0;
    };
    double sum = 0;
    for (auto s : samples)
        sum += static_cast<double>(s);
    out().num("p50_us", pct(0.50));
    out().num("p99_us", pct(0.99));
    out().num("p999_us", pct(0.999));
    out().num("max_us", static_cast<double>(samples.back()) / 1000.0);
    out().num("mean_us", sum / static_cast<double>(samples.size()) / 1000.0);
}

void run_bulk_tls(const options& o, tconn& c, double hard_deadline) {
    poller ep;
    ep.add(c.fd, EPOLLIN | EPOLLOUT, 0);
    const pattern& pat = the_pattern();
    std::vector<char> rbuf(std::size_t{256} * 1024);
    std::uint64_t sent = 0, received = 0, r0 = 0;
    std::string why;
    double warm_end = now_s() + o.warmup, end = warm_end + o.seconds, t0 = warm_end;
    bool measuring = false;
    std::optional<double> srv0;
    while (!has_error()) {
        double t = now_s();
        if (!measuring && t >= warm_end) {
            measuring = true;
            r0 = received;
            t0 = t;
            srv0 = proc_cpu_s(o.server_pid);
        }
        if (t >= end) break;
        if (t > hard_deadline) return set_error("hard cap reached");
        if (ep.wait(ms_until(end)) == 0) continue;
        // Write until OpenSSL or the kernel refuses, then read what has come back.
        for (;;) {
            int k = SSL_write(c.ssl, pat.at(sent), static_cast<int>(o.size));
            if (k > 0) {
                sent += static_cast<std::uint64_t>(k);
                continue;
            }
            if (!tls_wants(c.ssl, k, why)) return set_error("SSL_write: " + why);
            break;
        }
        for (;;) {
            int n = SSL_read(c.ssl, rbuf.data(), static_cast<int>(rbuf.size()));
            if (n <= 0) {
                if (!tls_wants(c.ssl, n, why)) return set_error("SSL_read: " + why);
                break;
            }
            auto got = static_cast<std::size_t>(n);
            if (received + got > sent || !pat.matches(received, rbuf.data(), got)) {
                return set_error(fmt::format("echo differs from the pattern at {}", received));
            }
            received += got;
        }
    }
    double dt = now_s() - t0;
    auto srv1 = proc_cpu_s(o.server_pid);
    out().num("elapsed_s", dt);
    out().integer("bytes_sent", sent);
    out().integer("bytes_echoed", received);
    out().num("gb_per_s", measuring ? static_cast<double>(received - r0) / dt / 1e9 : 0.0);
    out().num("server_cpu_s", srv0 && srv1 ? std::optional<double>(*srv1 - *srv0) : std::nullopt);
}

}  // namespace

void run_tls_echo(const options& o, double hard_deadline) {
    put_cpu_speed();
    SSL_CTX* ctx = tls_client_ctx();
    if (!ctx) return;
    std::vector<tconn> cs(o.connections);
    for (auto& c : cs) {
        if (!open_tls(ctx, o, c) || now_s() > hard_deadline) return close_all(cs);
    }
    put_tls_info(cs[0].ssl);
    if (o.workload == "bulk") {
        run_bulk_tls(o, cs[0], hard_deadline);
        close_all(cs);
        return SSL_CTX_free(ctx);
    }
    const bool latency = o.workload == "latency";
    std::vector<char> msg(the_pattern().at(0), the_pattern().at(0) + o.size);
    std::vector<char> buf(std::size_t{64} * 1024);
    std::vector<std::int64_t> samples;
    if (latency) samples.reserve(1 << 20);
    poller ep;
    std::uint64_t messages = 0;
    for (std::size_t i = 0; i < cs.size(); ++i) {
        ep.add(cs[i].fd, EPOLLIN, i);
        cs[i].unsent = static_cast<std::uint32_t>(o.size);
        cs[i].t_send = now_ns();
        if (!drive(cs[i], ep, i, o.size, msg.data(), buf.data(), buf.size(), latency, messages,
                   nullptr))
            return close_all(cs);
    }
    auto run_until = [&](double until, std::vector<std::int64_t>* smp) {
        while (now_s() < until && !has_error()) {
            int n = ep.wait(ms_until(until));
            for (int k = 0; k < n && !has_error(); ++k) {
                std::size_t i = ep.event(k).data.u64;
                (void)drive(cs[i], ep, i, o.size, msg.data(), buf.data(), buf.size(), latency,
                            messages, smp);
            }
        }
    };
    run_until(now_s() + o.warmup, nullptr);
    cpu_meter cpu(o.server_pid);
    cpu.start();
    std::uint64_t m0 = messages;
    double t0 = now_s();
    run_until(std::min(t0 + o.seconds, hard_deadline), latency ? &samples : nullptr);
    double dt = now_s() - t0;
    cpu.stop();
    auto msgs = static_cast<double>(messages - m0);
    out().num("elapsed_s", dt);
    cpu.put(dt);
    cpu.put_per_cpu(dt, msgs);
    if (latency) {
        put_percentiles(samples);
    } else {
        out().integer("messages", messages - m0);
        out().num("msgs_per_s", msgs / dt);
        out().num("mb_per_s", msgs * static_cast<double>(o.size) / dt / 1e6);
        auto per_msg = [&](std::optional<double> s) -> std::optional<double> {
            if (!s || msgs <= 0) return std::nullopt;
            return *s / msgs * 1e6;
        };
        auto srv = cpu.server_s();
        out().num("server_cpu_us_per_msg", per_msg(srv));
        out().num("client_cpu_us_per_msg", per_msg(cpu.client_s()));
        out().num("client_server_cpu_us_per_msg",
                  per_msg(srv ? std::optional<double>(*srv + cpu.client_s()) : std::nullopt));
        if (messages == m0) set_error("no message completed in the measured interval");
    }
    close_all(cs);
    SSL_CTX_free(ctx);
}

}  // namespace load
