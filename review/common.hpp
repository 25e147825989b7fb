// Shared bits of the review programs: a loop on the backend named on the command line, a raw
// blocking client, and a pair (client fd, server fd) over 127.0.0.1.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <orderly/event/connection.hpp>
#include <orderly/event/server.hpp>
#include <orderly/orderly.hpp>
#include <string>

namespace rv {

inline orderly::loop_options backend_opts(int argc, char** argv) {
    orderly::loop_options o;
    std::string b = argc > 1 ? argv[1] : "epoll";
    o.backend = b == "io_uring" ? orderly::loop_backend::io_uring : orderly::loop_backend::epoll;
    return o;
}

struct pair_fds {
    orderly::unique_fd client;
    orderly::unique_fd server;
};

inline pair_fds make_pair() {
    auto l = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0)).value();
    pair_fds p;
    const auto ep = l.local_endpoint();
    p.client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{5, 0};
    ::setsockopt(p.client.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(p.client.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(p.client.get(), ep.data(), ep.size()) != 0) std::perror("connect");
    p.server.reset(::accept4(l.native_handle(), nullptr, nullptr, SOCK_CLOEXEC));
    return p;
}

// What the client sees next: "eof", "reset", "data N", "timeout".
inline std::string client_sees(int fd) {
    char buf[65536];
    long long total = 0;
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            total += n;
            continue;
        }
        std::string s = total ? "data " + std::to_string(total) + " then " : "";
        if (n == 0) return s + "eof";
        if (errno == ECONNRESET) return s + "reset";
        if (errno == EAGAIN) return s + "timeout";
        return s + std::strerror(errno);
    }
}

inline void send_n(int fd, std::size_t n) {
    std::string s(n, 'x');
    std::size_t off = 0;
    while (off < n) {
        ssize_t k = ::send(fd, s.data() + off, n - off, MSG_NOSIGNAL);
        if (k <= 0) {
            std::perror("client send");
            return;
        }
        off += static_cast<std::size_t>(k);
    }
}

}  // namespace rv
