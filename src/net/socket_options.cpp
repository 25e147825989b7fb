#include "orderly/net/socket_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

result<void> set_int(int fd, int level, int name, int value) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return fail(errno_code(errno));
    return {};
}

result<int> get_int(int fd, int level, int name) noexcept {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) != 0) return fail(errno_code(errno));
    return value;
}

result<bool> get_flag(int fd, int level, int name) noexcept {
    auto v = get_int(fd, level, name);
    if (!v) return fail(v.error());
    return *v != 0;
}

// Socket options take int seconds; reject what would not fit rather than truncate silently.
bool fits_int_seconds(std::chrono::seconds s, long long min) noexcept {
    return s.count() >= min && s.count() <= INT_MAX;
}

}  // namespace

result<void> set_nodelay(int fd, bool on) noexcept {
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}
result<bool> get_nodelay(int fd) noexcept {
    return get_flag(fd, IPPROTO_TCP, TCP_NODELAY);
}

result<void> set_keepalive(int fd, bool on) noexcept {
    return set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
}
result<bool> get_keepalive(int fd) noexcept {
    return get_flag(fd, SOL_SOCKET, SO_KEEPALIVE);
}

result<void> set_keepalive(int fd, std::chrono::seconds idle, std::chrono::seconds interval,
                           int probes) noexcept {
    if (!fits_int_seconds(idle, 1) || !fits_int_seconds(interval, 1) || probes < 1) {
        return fail(errno_code(EINVAL));
    }
    // Timing first, so that keepalive never runs even briefly with the system defaults (2 hours).
    if (auto r = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count())); !r) {
        return r;
    }
    if (auto r = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(interval.count())); !r) {
        return r;
    }
    if (auto r = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, probes); !r) return r;
    return set_keepalive(fd, true);
}

result<void> set_linger(int fd, std::optional<std::chrono::seconds> linger) noexcept {
    ::linger l{};
    if (linger) {
        if (!fits_int_seconds(*linger, 0)) return fail(errno_code(EINVAL));
        l.l_onoff = 1;
        l.l_linger = static_cast<int>(linger->count());
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) return fail(errno_code(errno));
    return {};
}

result<std::optional<std::chrono::seconds>> get_linger(int fd) noexcept {
    ::linger l{};
    socklen_t len = sizeof l;
    if (::getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) != 0) return fail(errno_code(errno));
    if (l.l_onoff == 0) return std::optional<std::chrono::seconds>{};
    return std::optional<std::chrono::seconds>{std::chrono::seconds{l.l_linger}};
}

result<void> set_send_buffer_size(int fd, int bytes) noexcept {
    return set_int(fd, SOL_SOCKET, SO_SNDBUF, bytes);
}
result<int> get_send_buffer_size(int fd) noexcept {
    return get_int(fd, SOL_SOCKET, SO_SNDBUF);
}
result<void> set_recv_buffer_size(int fd, int bytes) noexcept {
    return set_int(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}
result<int> get_recv_buffer_size(int fd) noexcept {
    return get_int(fd, SOL_SOCKET, SO_RCVBUF);
}

result<void> set_reuse_address(int fd, bool on) noexcept {
    return set_int(fd, SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0);
}
result<bool> get_reuse_address(int fd) noexcept {
    return get_flag(fd, SOL_SOCKET, SO_REUSEADDR);
}
result<void> set_reuse_port(int fd, bool on) noexcept {
    return set_int(fd, SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0);
}
result<bool> get_reuse_port(int fd) noexcept {
    return get_flag(fd, SOL_SOCKET, SO_REUSEPORT);
}

result<void> set_v6_only(int fd, bool on) noexcept {
    return set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, on ? 1 : 0);
}
result<bool> get_v6_only(int fd) noexcept {
    return get_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
}

result<int> take_socket_error(int fd) noexcept {
    return get_int(fd, SOL_SOCKET, SO_ERROR);
}

}  // namespace orderly
