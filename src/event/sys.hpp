#pragma once
// The event loop's per-message syscalls, made directly rather than through glibc's wrappers.
//
// recv, send and epoll_wait are POSIX cancellation points. As soon as a process has a second
// thread (a server always does: its loop threads plus the caller's), glibc wraps each of them in
// __pthread_enable_asynccancel/__pthread_disable_asynccancel, about 1.5 % of a ping-pong
// server's CPU time (perf, docs/benchmarks.md). orderly's loop threads are never cancelled with
// pthread_cancel (a C++ program cannot survive that safely anyway), so the wrappers buy nothing.
// syscall(2) is not a cancellation point. Same arguments, return value and errno as the libc
// functions.
//
// Under ASan and TSan the libc functions are kept: the sanitizers intercept them (buffer checks,
// and the happens-before TSan derives from a send on one thread and a recv on another).

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ORDERLY_SYS_VIA_LIBC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ORDERLY_SYS_VIA_LIBC 1
#endif
#endif

#ifdef ORDERLY_SYS_VIA_LIBC
#include <sys/socket.h>
#endif

namespace orderly::detail {

#ifdef ORDERLY_SYS_VIA_LIBC

inline ssize_t sys_recv(int fd, void* buf, std::size_t len, int flags) noexcept {
    return ::recv(fd, buf, len, flags);
}

inline ssize_t sys_send(int fd, const void* buf, std::size_t len, int flags) noexcept {
    return ::send(fd, buf, len, flags);
}

inline int sys_epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms) noexcept {
    return ::epoll_wait(epfd, events, max_events, timeout_ms);
}

#else

inline ssize_t sys_recv(int fd, void* buf, std::size_t len, int flags) noexcept {
    return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
}

inline ssize_t sys_send(int fd, const void* buf, std::size_t len, int flags) noexcept {
    return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}

// epoll_pwait with no signal mask is epoll_wait, and exists on every architecture.
inline int sys_epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms) noexcept {
    return static_cast<int>(
        ::syscall(SYS_epoll_pwait, epfd, events, max_events, timeout_ms, nullptr, _NSIG / 8));
}

#endif

}  // namespace orderly::detail
