#pragma once
// Socket options as typed free functions on a descriptor, so the blocking and the event layer share
// them. Each is one setsockopt/getsockopt; errors are the errno of that call.

#include <chrono>
#include <optional>

#include "orderly/core/result.hpp"

namespace orderly {

result<void> set_nodelay(int fd, bool on) noexcept;  // TCP_NODELAY
result<bool> get_nodelay(int fd) noexcept;
result<void> set_keepalive(int fd, bool on) noexcept;  // SO_KEEPALIVE
result<bool> get_keepalive(int fd) noexcept;
// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (and SO_KEEPALIVE on).
result<void> set_keepalive(int fd, std::chrono::seconds idle, std::chrono::seconds interval,
                           int probes) noexcept;
// SO_LINGER: nullopt = off (close returns at once, the kernel keeps sending); 0 s = abortive close.
result<void> set_linger(int fd, std::optional<std::chrono::seconds> linger) noexcept;
result<std::optional<std::chrono::seconds>> get_linger(int fd) noexcept;
// SO_SNDBUF / SO_RCVBUF: Linux doubles the value asked for; the getters return what it holds.
result<void> set_send_buffer_size(int fd, int bytes) noexcept;
result<int> get_send_buffer_size(int fd) noexcept;
result<void> set_recv_buffer_size(int fd, int bytes) noexcept;
result<int> get_recv_buffer_size(int fd) noexcept;
result<void> set_reuse_address(int fd, bool on) noexcept;  // SO_REUSEADDR
result<bool> get_reuse_address(int fd) noexcept;
result<void> set_reuse_port(int fd, bool on) noexcept;  // SO_REUSEPORT
result<bool> get_reuse_port(int fd) noexcept;
result<void> set_v6_only(int fd, bool on) noexcept;  // IPV6_V6ONLY (before bind)
result<bool> get_v6_only(int fd) noexcept;
// SO_ERROR: the pending error, cleared by reading it (0 when none).
result<int> take_socket_error(int fd) noexcept;

}  // namespace orderly
