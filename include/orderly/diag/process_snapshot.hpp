#pragma once
// process_snapshot: one process's TCP and Unix stream sockets at one moment — each matched to the
// descriptor that holds it — with its descriptor usage and what is wrong with them (findings).
// assemble() builds one from what /proc and sock_diag said, without any I/O of its own.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "orderly/diag/findings.hpp"
#include "orderly/diag/kernel_socket.hpp"
#include "orderly/diag/process.hpp"

namespace orderly::diag {

struct socket_info {
    kernel_socket kernel;  // as sock_diag reported it
    int fd = -1;           // the process's descriptor for it; -1 for a socket left to the kernel
    socket_state state = socket_state::opening;
    // Nothing has moved on the connection for at least this long: no segment arrived and no new
    // data was sent (the smallest of TCP_INFO's last_ack_recv, last_data_recv, last_data_sent).
    // nullopt: the kernel does not say (Unix sockets, sockets without TCP_INFO).
    std::optional<std::chrono::milliseconds> quiet_for;
    // TCP with bytes queued: the send queue has not moved (nothing acknowledged) for at least
    // this long. From one look (send_stall_bound()); with --watch, also from looks that saw the
    // same bytes_acked and no smaller queue. nullopt: not known to have stood still.
    std::optional<std::chrono::milliseconds> send_stalled_for;
    bool stall_seen_across_looks = false;  // send_stalled_for comes from comparing looks
};

// A TCP socket a descriptor holds that is in no table: its TCP state is CLOSE. The connection
// has ended (both FINs, a reset, a connect() that failed) or was never made (socket() not yet
// connected, bound or listening) — the kernel keeps nothing that tells these apart.
struct unconnected_socket {
    int fd = -1;
    std::uint64_t inode = 0;
    std::string protocol;  // "TCP" or "TCPv6"
    // Held so for at least this long (--watch: seen so in earlier looks); nullopt: unknown.
    std::optional<std::chrono::milliseconds> held_for;
};

struct descriptor_usage {
    std::size_t open = 0;     // descriptors of any kind
    std::size_t sockets = 0;  // socket descriptors of any kind
    // Socket descriptors not found among the TCP and Unix stream sockets of the namespace: UDP,
    // netlink, raw, or TCP sockets in no table (never connected, or reset and not yet closed).
    std::size_t other_sockets = 0;
    descriptor_limit limit;
    // Of other_sockets, those the kernel names TCP: in state CLOSE (see unconnected_socket).
    std::size_t unconnected_tcp = 0;
};

inline constexpr std::size_t socket_state_count = 7;
using socket_state_counts = std::array<std::size_t, socket_state_count>;

struct process_snapshot {
    int pid = 0;
    std::string name;
    std::string command;
    std::uint32_t uid = 0;
    std::string user;
    std::chrono::system_clock::time_point taken{};
    descriptor_usage descriptors;
    std::vector<socket_info> listeners;    // by fd
    std::vector<socket_info> connections;  // by fd; every non-listening socket it holds
    // TCP sockets that no descriptor holds any more, still being ended by the kernel
    // (FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK), on a port one of its TCP listeners is bound to.
    // Such a socket has no owner: another process listening on the same port may have left it.
    std::vector<socket_info> orphans;
    std::vector<unconnected_socket> unconnected;  // by fd
    tcp_counters counters;                        // of the process's network namespace
    std::vector<finding> findings;                // filled by diagnose()
    std::vector<std::string> notes;  // what limits this snapshot (a table that kept changing, ...)
    std::vector<std::string> changes;  // since the previous snapshot (orderly doctor --watch)

    // Connections and listeners (not orphans) in each state, indexed by socket_state.
    [[nodiscard]] socket_state_counts state_counts() const noexcept;
};

// Joins a process's descriptors with the socket table of its network namespace: its listeners
// and connections by fd, the orphans on its listening ports, descriptor usage, quiet_for and
// send_stalled_for; descriptors in no table whose protocol is "TCP" or "TCPv6" become
// `unconnected`. Pure; leaves findings, counters, taken and changes empty.
process_snapshot assemble(const process_info& process, const std::vector<kernel_socket>& table);

}  // namespace orderly::diag
