// What every workload needs from the system: clocks, sockets, an epoll set.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace load {

// ---- time (CLOCK_MONOTONIC) ----
[[nodiscard]] std::int64_t now_ns();
[[nodiscard]] double now_s();
// Milliseconds until `deadline` (seconds, monotonic), clamped to [0, cap].
[[nodiscard]] int ms_until(double deadline, int cap = 100);
// This process's user + system CPU time, in seconds.
[[nodiscard]] double self_cpu_s();

// strerror without its shared buffer (clang-tidy's concurrency-mt-unsafe, and the habit).
[[nodiscard]] const char* errstr(int err);

// ---- sockets ----
[[nodiscard]] inline bool is_reset(int err) {
    return err == ECONNRESET || err == EPIPE;
}
// Starts a non-blocking connect (optionally from `from`). Returns the descriptor (connect done or
// in progress) or -errno.
[[nodiscard]] int start_connect(const sockaddr_in& to, const sockaddr_in* from);
[[nodiscard]] int socket_error(int fd);
void set_nodelay(int fd);
// A pidfd for `pid` (readable once it exits), or -1.
[[nodiscard]] int open_pidfd(pid_t pid);

// One epoll set; a failing epoll_ctl is reported with set_error.
class poller {
  public:
    poller();
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;
    ~poller();

    void add(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_ADD, fd, ev, tag); }
    void mod(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_MOD, fd, ev, tag); }
    // Returns the number of ready events (0 on timeout or EINTR).
    int wait(int timeout_ms);
    [[nodiscard]] const epoll_event& event(int i) const {
        return events_[static_cast<std::size_t>(i)];
    }

  private:
    void ctl(int op, int fd, std::uint32_t ev, std::uint64_t tag);
    int fd_;
    std::vector<epoll_event> events_;
};

}  // namespace load
