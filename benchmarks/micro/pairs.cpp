#include "pairs.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace orderly::micro {
namespace {

void nodelay(int fd) noexcept {
    const int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

}  // namespace

fd_pair unix_pair() noexcept {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return {};
    return {fds[0], fds[1]};
}

int tcp_listener() noexcept {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

fd_pair tcp_pair(int listener) noexcept {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&sin), &len) != 0) return {};
    fd_pair p;
    p.a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p.a < 0) return {};
    // Blocking connect on loopback: the handshake completes before connect() returns, and the
    // connection then waits in the backlog, so one thread can do both ends.
    if (::connect(p.a, reinterpret_cast<sockaddr*>(&sin), len) != 0) {
        close_pair(p);
        return {};
    }
    p.b = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (p.b < 0) {
        close_pair(p);
        return {};
    }
    nodelay(p.a);
    nodelay(p.b);
    return p;
}

fd_pair tcp_pair() noexcept {
    const int l = tcp_listener();
    if (l < 0) return {};
    const fd_pair p = tcp_pair(l);
    ::close(l);
    return p;
}

void close_pair(fd_pair& p) noexcept {
    if (p.a >= 0) ::close(p.a);
    if (p.b >= 0) ::close(p.b);
    p = {};
}

}  // namespace orderly::micro
