#pragma once
// A snapshot of the kernel's view of a TCP connection (getsockopt TCP_INFO) and of its queues
// (ioctl SIOCINQ/SIOCOUTQ). Cheap: one getsockopt and two ioctls, no allocation.

#include <cstdint>
#include <string_view>

#include "orderly/core/result.hpp"

namespace orderly {

// The TCP state machine of RFC 793 as Linux numbers it (include/net/tcp_states.h).
enum class tcp_state : std::uint8_t {
    unknown = 0,
    established = 1,
    syn_sent,
    syn_recv,
    fin_wait1,
    fin_wait2,
    time_wait,
    close,
    close_wait,
    last_ack,
    listen,
    closing,
    new_syn_recv,
};

// "ESTABLISHED", "FIN_WAIT1", "CLOSE_WAIT", ... as ss(8) and netstat print them.
std::string_view to_string(tcp_state s) noexcept;

struct tcp_info_snapshot {
    tcp_state state = tcp_state::unknown;
    std::uint32_t rtt_us = 0;  // smoothed round-trip time
    std::uint32_t rttvar_us = 0;
    std::uint32_t snd_cwnd = 0;  // congestion window, segments
    std::uint32_t unacked_segments = 0;
    std::uint32_t total_retransmits = 0;
    std::uint32_t lost_segments = 0;
    std::uint64_t bytes_acked = 0;       // by the peer (kernel >= 4.1)
    std::uint64_t bytes_received = 0;    // from the peer (kernel >= 4.1)
    std::uint32_t notsent_bytes = 0;     // queued but never sent (kernel >= 4.6)
    std::uint32_t send_queue_bytes = 0;  // SIOCOUTQ: sent-but-unacknowledged plus not yet sent
    std::uint32_t recv_queue_bytes = 0;  // SIOCINQ: received and not yet read by us
};

// Reads TCP_INFO and the queue sizes of `fd`. Errors: the getsockopt errno (e.g. EOPNOTSUPP for a
// Unix-domain socket, whose snapshot is then unavailable; use queue_sizes() for those).
result<tcp_info_snapshot> read_tcp_info(int fd) noexcept;

// SIOCINQ / SIOCOUTQ only; works for TCP and Unix stream sockets.
struct queue_sizes {
    std::uint32_t unread = 0;  // bytes received and not read
    std::uint32_t unsent_or_unacked = 0;
};
result<queue_sizes> read_queue_sizes(int fd) noexcept;

}  // namespace orderly
