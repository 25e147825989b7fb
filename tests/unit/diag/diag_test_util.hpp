#pragma once
// Helpers of the diag tests: real sockets' inodes, bounded waits for the kernel to catch up, and
// hand-made kernel_socket rows for the pure functions.

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "orderly/diag/kernel_socket.hpp"
#include "orderly/diag/snapshot.hpp"

namespace orderly::diag::test {

// The socket inode of a descriptor, as /proc/PID/fd and sock_diag name it.
inline std::uint64_t inode_of(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return 0;
    return st.st_ino;
}

// One send(2) of `data` on a blocking socket (small enough to go at once): the bytes sent, or -1.
inline ssize_t send_raw(int fd, std::string_view data) {
    return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
}

// Polls `ok` until it returns true or `limit` passes: loopback delivery (softirq) and TCP timers
// run asynchronously, and a loaded machine can delay them.
template <class F>
bool eventually(F&& ok, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (ok()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return ok();
}

// A snapshot of this process that must succeed, with every finding regardless of age.
inline process_snapshot self_snapshot(std::chrono::milliseconds min_age = {}) {
    auto s = snapshot(static_cast<int>(::getpid()), {min_age});
    if (!s) throw std::runtime_error(s.error().message());
    return std::move(*s);
}

// The socket of `snap` held by descriptor `fd`, or nullptr.
inline const socket_info* find_fd(const process_snapshot& snap, int fd) {
    for (const auto* list : {&snap.listeners, &snap.connections}) {
        for (const auto& s : *list) {
            if (s.fd == fd) return &s;
        }
    }
    return nullptr;
}

// The finding of `kind` in `snap`, or nullptr.
inline const finding* find_kind(const process_snapshot& snap, finding_kind kind) {
    for (const auto& f : snap.findings) {
        if (f.kind == kind) return &f;
    }
    return nullptr;
}

// A TCP row as the parser would make it.
inline kernel_socket tcp_row(tcp_state state, std::string_view local, std::string_view peer,
                             std::uint64_t inode) {
    kernel_socket k;
    k.kind = socket_kind::tcp;
    k.state = state;
    k.shutdown = 0;
    k.inode = inode;
    k.cookie = inode + 1000;
    k.local = endpoint::parse(local).value();
    if (!peer.empty()) k.peer = endpoint::parse(peer).value();
    k.tcp = tcp_details{};
    return k;
}

// A connected Unix stream row.
inline kernel_socket unix_row(std::uint64_t inode, std::uint64_t peer_inode) {
    kernel_socket k;
    k.kind = socket_kind::unix_stream;
    k.state = tcp_state::established;
    k.shutdown = 0;
    k.inode = inode;
    k.cookie = inode + 1000;
    k.unix_peer_inode = peer_inode;
    return k;
}

// A socket_info for a row held by `fd`, quiet for `quiet_ms` (as assemble() would make it).
inline socket_info held(const kernel_socket& k, int fd, std::int64_t quiet_ms) {
    socket_info s;
    s.kernel = k;
    s.fd = fd;
    s.state = classify(k);
    if (quiet_ms >= 0) s.quiet_for = std::chrono::milliseconds(quiet_ms);
    s.send_stalled_for = send_stall_bound(k);
    return s;
}

}  // namespace orderly::diag::test
