#pragma once
// Connected descriptor pairs for the micro-benchmarks, made with plain syscalls so that the `raw`
// and `orderly` variants of a case run on identical sockets (the orderly variant adopts the
// descriptors into stream_socket, which only adds O_NONBLOCK). The test support library does the
// same with orderly's own listener; benchmarks do not link it.

#include <utility>

namespace orderly::micro {

// Two ends of a blocking descriptor pair; -1 on failure (errno tells why).
struct fd_pair {
    int a = -1;
    int b = -1;
    [[nodiscard]] bool ok() const noexcept { return a >= 0 && b >= 0; }
};

// socketpair(AF_UNIX, SOCK_STREAM).
fd_pair unix_pair() noexcept;

// A blocking TCP listener on 127.0.0.1 with an ephemeral port, or -1.
int tcp_listener() noexcept;
// Connects to `listener` and accepts: a = client, b = server. TCP_NODELAY on both so that a small
// send is never held back by Nagle waiting for the ACK of the previous one.
fd_pair tcp_pair(int listener) noexcept;
// The same with its own short-lived listener.
fd_pair tcp_pair() noexcept;

void close_pair(fd_pair& p) noexcept;

}  // namespace orderly::micro
