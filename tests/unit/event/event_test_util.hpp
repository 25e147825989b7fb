#pragma once
// Helpers for the event-layer tests: a loop on its own thread, blocking raw-socket clients with
// receive timeouts (so no test can hang), and the descriptor limit.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "orderly/core/unique_fd.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/listener.hpp"

namespace orderly::test {

// A loop running on its own thread; stopped and joined by the destructor.
class loop_thread {
  public:
    loop_thread() : thread_([this] { lp.run(); }) {}
    ~loop_thread() {
        lp.stop();
        thread_.join();
    }
    loop_thread(const loop_thread&) = delete;
    loop_thread& operator=(const loop_thread&) = delete;

    // Runs fn on the loop thread and waits (at most 10 s) for it.
    template <class F>
    auto sync(F&& fn) -> decltype(fn()) {
        std::packaged_task<decltype(fn())()> task(std::forward<F>(fn));
        auto fut = task.get_future();
        lp.post([&task] { task(); });
        if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
            ADD_FAILURE() << "loop did not run the task";
            std::abort();  // the task refers to this frame; nothing safe is left to do
        }
        return fut.get();
    }

    loop lp;

  private:
    std::thread thread_;
};

// Waits until pred() or the timeout; returns pred().
inline bool wait_for(const std::function<bool()>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// A blocking client socket with SO_RCVTIMEO/SO_SNDTIMEO, connected to `to`.
inline unique_fd connect_client(const endpoint& to, int timeout_ms = 10000) {
    unique_fd fd(::socket(to.domain(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = ::connect(fd.get(), to.data(), to.size());
    if (rc != 0 && errno == EINTR) {
        // io_uring's task-work notification interrupts a blocking call with a timeout on a
        // thread that submitted to a ring (the socket's timeout turns the restart into EINTR):
        // the connect goes on in the kernel, so wait for it.
        pollfd pf{fd.get(), POLLOUT, 0};
        while ((rc = ::poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR) {
        }
        int err = rc == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof err;
        if (rc == 1) ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        rc = err == 0 ? 0 : -1;
    }
    if (rc != 0) {
        ADD_FAILURE() << "connect: " << std::strerror(errno);
        fd.reset();
    }
    return fd;
}

// A connected pair: a blocking client and the server side's descriptor (to adopt).
struct tcp_pair {
    unique_fd client;
    unique_fd server;
};
inline tcp_pair make_tcp_pair() {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    EXPECT_TRUE(l.has_value());
    if (!l) return {};
    tcp_pair p;
    p.client = connect_client(l->local_endpoint());
    p.server.reset(::accept4(l->native_handle(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(p.server.valid());
    return p;
}

// Reads until EOF (returns the count, or -errno on error/timeout); appends to `out` if given.
inline long long read_to_eof(int fd, std::string* out = nullptr) {
    char buf[65536];
    long long total = 0;
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) return total;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        total += n;
        if (out != nullptr) out->append(buf, static_cast<std::size_t>(n));
    }
}

inline bool send_all(int fd, const void* data, std::size_t len) {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        const ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

// Raises the soft descriptor limit to `want` (or the hard limit); returns the new soft limit.
inline rlim_t raise_fd_limit(rlim_t want) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = std::min(want, rl.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

// The byte at offset i of the test streams: position-dependent so loss and reordering show.
inline char pattern_byte(std::uint64_t i) {
    return static_cast<char>('a' + (i % 23));
}

}  // namespace orderly::test
