#pragma once
// listener: a bound, listening stream socket. accept() hands out stream_sockets.

#include <climits>
#include <optional>

#include "orderly/core/deadline.hpp"
#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/stream_socket.hpp"

namespace orderly {

struct listen_options {
    // Backlog; the default asks for as much as the system allows (Linux clamps to somaxconn), so
    // bursts wait in the kernel instead of being refused.
    int backlog = INT_MAX;
    bool reuse_address = true;  // SO_REUSEADDR: restart while old connections sit in TIME_WAIT
    bool reuse_port = false;    // SO_REUSEPORT
    // IPv6 only: true = IPv6 only; false = dual stack (IPv4 clients appear as ::ffff:a.b.c.d);
    // unset = the system default (net.ipv6.bindv6only).
    std::optional<bool> v6_only;
    // Unix paths: remove an existing socket file at the path before bind (a stale one from a
    // crashed run). Only a socket file is removed, never a regular file.
    bool replace_unix_socket_file = false;
};

class listener {
  public:
    listener() noexcept = default;
    listener(listener&&) noexcept = default;
    listener& operator=(listener&&) noexcept;
    ~listener();

    // socket + bind + listen. Port 0 binds an ephemeral port; local_endpoint() tells which.
    // Errors name the endpoint and the reason ("bind 127.0.0.1:80: Permission denied").
    static result<listener, error_info> listen(const endpoint& at, const listen_options& opts = {});

    // Waits for one connection until the deadline. The new socket is non-blocking and CLOEXEC.
    // Errors: errc::timed_out, EMFILE/ENFILE (descriptor exhaustion), errc::not_open, ...
    // ECONNABORTED (a client gave up while queued) is skipped, not returned.
    result<stream_socket> accept(deadline until = deadline::never());

    [[nodiscard]] const endpoint& local_endpoint() const noexcept { return local_; }
    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    // Stops listening; queued, not yet accepted connections are reset by the kernel. A Unix
    // socket file this listener created is removed.
    void close() noexcept;
    // Gives the descriptor away (e.g. to the event layer's server). The Unix socket file stays.
    [[nodiscard]] unique_fd release() noexcept;

  private:
    unique_fd fd_;
    endpoint local_;
    bool owns_unix_path_ = false;
};

}  // namespace orderly
