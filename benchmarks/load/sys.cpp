#include "sys.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "output.hpp"

namespace load {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double now_s() {
    return static_cast<double>(now_ns()) * 1e-9;
}

int ms_until(double deadline, int cap) {
    double ms = (deadline - now_s()) * 1000.0;
    if (ms <= 0) return 0;
    return ms > cap ? cap : static_cast<int>(ms) + 1;
}

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

const char* errstr(int err) {
    const char* d = strerrordesc_np(err);
    return d ? d : "unknown error";
}

int start_connect(const sockaddr_in& to, const sockaddr_in* from) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (from) {
        // Let connect() pick the port for the whole 4-tuple instead of bind() reserving one per
        // source address: otherwise ports run out long before the 4-tuples do.
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, reinterpret_cast<const sockaddr*>(from), sizeof *from) != 0) {
            int err = errno;
            close(fd);
            return -err;
        }
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

void set_nodelay(int fd) {
    // Every workload sends whole messages in one call; Nagle would only add delay.
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

poller::poller() : fd_(epoll_create1(EPOLL_CLOEXEC)), events_(1024) {
    if (fd_ < 0) set_error(fmt::format("epoll_create1: {}", errstr(errno)));
}

poller::~poller() {
    close(fd_);
}

int poller::wait(int timeout_ms) {
    int n = epoll_wait(fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    return n < 0 ? 0 : n;
}

void poller::ctl(int op, int fd, std::uint32_t ev, std::uint64_t tag) {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = tag;
    if (epoll_ctl(fd_, op, fd, &e) != 0) {
        set_error(fmt::format("epoll_ctl: {}", errstr(errno)));
    }
}

}  // namespace load
