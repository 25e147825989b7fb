// W3 bulk: one connection writes 16 KiB chunks as fast as the kernel takes them while reading
// the echo; every echoed byte is checked against the pattern. Result: echoed bytes per second.
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

void run_bulk(const options& o, double hard_deadline) {
    int fd = start_connect(o.addr, nullptr);
    if (fd < 0) return set_error(fmt::format("connect: {}", errstr(-fd)));
    pollfd p{fd, POLLOUT, 0};
    int err = poll(&p, 1, 5000) == 1 ? socket_error(fd) : ETIMEDOUT;
    if (err != 0) {
        close(fd);
        return set_error(fmt::format("connect: {}", errstr(err)));
    }
    set_nodelay(fd);
    poller ep;
    ep.add(fd, EPOLLIN | EPOLLOUT, 0);
    const pattern& pat = the_pattern();
    std::vector<char> rbuf(std::size_t{256} * 1024);
    const std::size_t chunk = o.size;
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t mismatches = 0;
    std::optional<std::uint64_t> first_mismatch;
    bool eof = false;
    double start = now_s();
    double warm_end = start + o.warmup;
    double end = warm_end + o.seconds;
    std::uint64_t r0 = 0;
    double t0 = warm_end;
    bool measuring = false;
    std::optional<double> srv_cpu0;
    while (!eof && !has_error()) {
        double t = now_s();
        if (!measuring && t >= warm_end) {
            measuring = true;
            r0 = received;
            t0 = t;
            srv_cpu0 = proc_cpu_s(o.server_pid);
        }
        if (t >= end) break;
        if (t > hard_deadline) {
            set_error("hard cap reached");
            break;
        }
        int n = ep.wait(ms_until(end));
        for (int i = 0; i < n && !has_error(); ++i) {
            std::uint32_t ev = ep.event(i).events;
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t r = recv(fd, rbuf.data(), rbuf.size(), 0);
                if (r == 0) {
                    eof = true;
                    set_error("unexpected EOF from the server");
                } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
                    set_error(fmt::format("recv: {}", errstr(errno)));
                } else if (r > 0) {
                    auto got = static_cast<std::size_t>(r);
                    if (received + got > sent || !pat.matches(received, rbuf.data(), got)) {
                        ++mismatches;
                        if (!first_mismatch) first_mismatch = received;
                        set_error(fmt::format("echoed bytes differ from the pattern at offset {}",
                                              received));
                    }
                    received += got;
                }
            }
            if (ev & EPOLLOUT) {
                ssize_t w = send(fd, pat.at(sent), chunk, MSG_NOSIGNAL);
                if (w > 0) {
                    sent += static_cast<std::uint64_t>(w);
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    set_error(fmt::format("send: {}", errstr(errno)));
                }
            }
        }
    }
    double t1 = now_s();
    auto srv_cpu1 = proc_cpu_s(o.server_pid);
    close(fd);
    double dt = t1 - t0;
    out().num("elapsed_s", dt);
    out().integer("bytes_sent", sent);
    out().integer("bytes_echoed", received);
    out().num("gb_per_s", measuring ? static_cast<double>(received - r0) / dt / 1e9 : 0.0);
    out().num("server_cpu_s",
              srv_cpu0 && srv_cpu1 ? std::optional<double>(*srv_cpu1 - *srv_cpu0) : std::nullopt);
    out().integer("pattern_mismatches", mismatches);
    if (first_mismatch) out().integer("first_mismatch_offset", *first_mismatch);
}

}  // namespace load
