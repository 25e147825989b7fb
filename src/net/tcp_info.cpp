#include "orderly/net/tcp_info.hpp"

// The kernel's own header: glibc's <netinet/tcp.h> has an older struct tcp_info without
// tcpi_bytes_acked / tcpi_bytes_received / tcpi_notsent_bytes, and the two cannot be mixed.
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

// IPPROTO_TCP without <netinet/in.h>, whose definitions clash with the <linux/*> ones.
constexpr int level_tcp = 6;

tcp_state state_from_kernel(std::uint8_t s) noexcept {
    if (s >= static_cast<std::uint8_t>(tcp_state::established) &&
        s <= static_cast<std::uint8_t>(tcp_state::new_syn_recv)) {
        return static_cast<tcp_state>(s);
    }
    return tcp_state::unknown;
}

std::uint32_t clamp_queue(int bytes) noexcept {
    return bytes < 0 ? 0U : static_cast<std::uint32_t>(bytes);
}

}  // namespace

std::string_view to_string(tcp_state s) noexcept {
    switch (s) {
        case tcp_state::unknown:
            return "UNKNOWN";
        case tcp_state::established:
            return "ESTABLISHED";
        case tcp_state::syn_sent:
            return "SYN_SENT";
        case tcp_state::syn_recv:
            return "SYN_RECV";
        case tcp_state::fin_wait1:
            return "FIN_WAIT1";
        case tcp_state::fin_wait2:
            return "FIN_WAIT2";
        case tcp_state::time_wait:
            return "TIME_WAIT";
        case tcp_state::close:
            return "CLOSE";
        case tcp_state::close_wait:
            return "CLOSE_WAIT";
        case tcp_state::last_ack:
            return "LAST_ACK";
        case tcp_state::listen:
            return "LISTEN";
        case tcp_state::closing:
            return "CLOSING";
        case tcp_state::new_syn_recv:
            return "NEW_SYN_RECV";
    }
    return "UNKNOWN";
}

result<tcp_info_snapshot> read_tcp_info(int fd) noexcept {
    // Zeroed so that fields an older kernel does not fill (it returns a shorter length) read as 0.
    ::tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, level_tcp, TCP_INFO, &info, &len) != 0) return fail(errno_code(errno));

    tcp_info_snapshot snap;
    snap.state = state_from_kernel(info.tcpi_state);
    snap.rtt_us = info.tcpi_rtt;
    snap.rttvar_us = info.tcpi_rttvar;
    snap.snd_cwnd = info.tcpi_snd_cwnd;
    snap.unacked_segments = info.tcpi_unacked;
    snap.total_retransmits = info.tcpi_total_retrans;
    snap.lost_segments = info.tcpi_lost;
    snap.bytes_acked = info.tcpi_bytes_acked;
    snap.bytes_received = info.tcpi_bytes_received;
    snap.notsent_bytes = info.tcpi_notsent_bytes;

    // Best effort: SIOCINQ fails with EINVAL on a listening socket, whose TCP_INFO is still
    // worth having; the queues then read as 0.
    int bytes = 0;
    if (::ioctl(fd, SIOCINQ, &bytes) == 0) snap.recv_queue_bytes = clamp_queue(bytes);
    bytes = 0;
    if (::ioctl(fd, SIOCOUTQ, &bytes) == 0) snap.send_queue_bytes = clamp_queue(bytes);
    return snap;
}

result<queue_sizes> read_queue_sizes(int fd) noexcept {
    queue_sizes q;
    int bytes = 0;
    if (::ioctl(fd, SIOCINQ, &bytes) != 0) return fail(errno_code(errno));
    q.unread = clamp_queue(bytes);
    bytes = 0;
    if (::ioctl(fd, SIOCOUTQ, &bytes) != 0) return fail(errno_code(errno));
    q.unsent_or_unacked = clamp_queue(bytes);
    return q;
}

}  // namespace orderly
