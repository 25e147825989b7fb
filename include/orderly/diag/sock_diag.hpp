#pragma once
// Netlink sock_diag, the way `ss` reads the kernel's socket tables: the requests (one
// SOCK_DIAG_BY_FAMILY dump each for TCP over IPv4, TCP over IPv6 and Unix sockets), the parser of
// the replies, and the dump itself. Everything that knows the wire format is in this one place;
// the parser is a pure function over bytes, so it can be tested and fuzzed without a kernel.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/diag/kernel_socket.hpp"

namespace orderly::diag {

// nlmsghdr + inet_diag_req_v2 for every TCP socket of `family` (AF_INET or AF_INET6) in any
// state but TIME_WAIT (which no descriptor holds), asking for TCP_INFO and the socket's memory
// (the kernel adds the shutdown bits to every full socket by itself).
std::vector<std::byte> tcp_dump_request(int family, std::uint32_t seq);
// nlmsghdr + unix_diag_req for every Unix socket, with its name, peer, queues, memory and owner.
std::vector<std::byte> unix_dump_request(std::uint32_t seq);

// What one datagram of a dump reply held.
struct reply_part {
    std::vector<kernel_socket> sockets;
    bool done = false;         // NLMSG_DONE seen: the dump is complete (later bytes are ignored)
    bool interrupted = false;  // NLM_F_DUMP_INTR: the table changed meanwhile; dump again
};

// Parses one datagram of the reply to the request numbered `seq` (what one recv() returned).
// Pure. Unix sockets of every type are returned (their `kind` says which); families other than
// IPv4, IPv6 and Unix are skipped. Errors: the kernel's NLMSG_ERROR or a failed NLMSG_DONE as
// that errno; a malformed message, or one answering another request, as EBADMSG with a detail
// naming the byte offset and what is wrong.
result<reply_part, error_info> parse_reply(std::span<const std::byte> bytes, std::uint32_t seq);

// What only the whole Unix table tells: each connected socket's peer endpoint (the peer's own
// name) and whether its peer is gone (the kernel shut both directions and the peer's socket is
// no longer in the table).
void link_unix_peers(std::vector<kernel_socket>& table);

struct socket_table {
    std::vector<kernel_socket> sockets;  // TCP (IPv4 and IPv6) and Unix stream sockets
    bool complete = true;            // false: a table kept changing during every attempt to dump it
    std::vector<std::string> notes;  // a table the kernel cannot dump (no unix_diag, no IPv6)
};

// Dumps the TCP and Unix stream sockets of the calling thread's network namespace, or of the
// namespace `netns_fd` refers to (an open /proc/PID/ns/net; needs CAP_SYS_ADMIN there). Each
// dump is retried twice when the kernel says the table changed meanwhile; every receive waits at
// most 5 s. A family the kernel has no sock_diag handler for (ENOENT: unix_diag not loaded;
// no IPv6) is left out with a note. Errors: the socket(2)/setns(2)/sendmsg/recvmsg errno, or the
// parser's, with a detail.
result<socket_table, error_info> dump_sockets(int netns_fd = -1);

}  // namespace orderly::diag
