#pragma once
// What /proc says about a process that sock_diag does not: which descriptors are sockets (and
// which socket inode each refers to, as `ss -p` finds them), its descriptor limit, its owner and
// its network namespace; and the namespace's TCP counters from /proc/PID/net/netstat.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orderly/core/result.hpp"

namespace orderly::diag {

struct socket_descriptor {
    int fd = -1;
    std::uint64_t inode = 0;
    // The kernel's protocol name ("TCP", "TCPv6", "UDP", "UNIX-STREAM", ...) for a socket in no
    // table; empty when not read (read_process() leaves it empty: see socket_protocol()).
    std::string protocol;
};

// RLIMIT_NOFILE as /proc/PID/limits shows it; nullopt means unlimited.
struct descriptor_limit {
    std::optional<std::uint64_t> soft;
    std::optional<std::uint64_t> hard;
};

struct process_info {
    int pid = 0;
    std::string name;     // /proc/PID/comm
    std::string command;  // /proc/PID/cmdline, arguments joined by spaces (may be empty)
    std::uint32_t uid = 0;
    std::string user;  // the uid's name, or the number when it has none
    std::size_t open_descriptors = 0;
    std::vector<socket_descriptor> sockets;  // every socket descriptor, by fd
    descriptor_limit limit;
    std::uint64_t netns = 0;  // inode of /proc/PID/ns/net (0 if unreadable)
};

// Reads /proc/PID. Errors: ESRCH "no process with PID N" (also when it exits while being read);
// EACCES naming the process's user and ours and what to run instead; other errnos of /proc.
result<process_info, error_info> read_process(int pid);

// The protocol of the socket that descriptor `fd` of process `pid` refers to, as the kernel names
// it in the xattr "system.sockprotoname" of /proc/PID/fd/FD ("TCP", "TCPv6", "UDP", ...);
// nullopt when it cannot be read or the descriptor no longer refers to socket inode `inode`.
std::optional<std::string> socket_protocol(int pid, int fd, std::uint64_t inode);

// Every PID in /proc, ascending.
std::vector<int> list_processes();

// The inode of the calling process's network namespace (0 if unreadable).
std::uint64_t own_netns();

// TCP counters of a network namespace (TcpExt in /proc/PID/net/netstat); nullopt: not there.
struct tcp_counters {
    std::optional<std::uint64_t> listen_overflows;  // accept queue full: a SYN or ACK dropped
    std::optional<std::uint64_t> listen_drops;
    std::optional<std::uint64_t> abort_on_close;  // close() with unread data: RST sent
    std::optional<std::uint64_t> abort_on_data;   // data after close() or with linger 0: RST
};
// Reads the counters of PID's network namespace; all nullopt when the file cannot be read.
tcp_counters read_tcp_counters(int pid);

// Pure parsers of the /proc text formats above.
// "socket:[12345]" -> 12345; nullopt for any other link target.
std::optional<std::uint64_t> socket_inode_of(std::string_view link_target);
// The "Max open files" line of /proc/PID/limits.
descriptor_limit parse_descriptor_limit(std::string_view limits_text);
// The TcpExt header and value lines of /proc/net/netstat.
tcp_counters parse_tcp_counters(std::string_view netstat_text);
// The real uid on the "Uid:" line of /proc/PID/status.
std::optional<std::uint32_t> parse_status_uid(std::string_view status_text);

}  // namespace orderly::diag
