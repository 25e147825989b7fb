#include "orderly/diag/kernel_socket.hpp"

#include <algorithm>

namespace orderly::diag {

std::string_view to_string(socket_kind k) noexcept {
    switch (k) {
        case socket_kind::tcp:
            return "tcp";
        case socket_kind::unix_stream:
            return "unix_stream";
        case socket_kind::unix_dgram:
            return "unix_dgram";
        case socket_kind::unix_seqpacket:
            return "unix_seqpacket";
    }
    return "unknown";
}

std::string_view shutdown_arrow(std::optional<std::uint8_t> mask) noexcept {
    if (!mask) return "";
    const bool rd = (*mask & shutdown_read) != 0;
    const bool wr = (*mask & shutdown_write) != 0;
    if (rd && wr) return "---";
    if (rd) return "-->";
    if (wr) return "<--";
    return "<->";
}

std::string_view to_string(tcp_timer t) noexcept {
    switch (t) {
        case tcp_timer::off:
            return "off";
        case tcp_timer::retransmit:
            return "on";
        case tcp_timer::keepalive:
            return "keepalive";
        case tcp_timer::time_wait:
            return "timewait";
        case tcp_timer::zero_window_probe:
            return "persist";
    }
    return "unknown";
}

std::string_view to_string(socket_state s) noexcept {
    switch (s) {
        case socket_state::opening:
            return "opening";
        case socket_state::open:
            return "open";
        case socket_state::half_closed_by_peer:
            return "half_closed_by_peer";
        case socket_state::half_closed_by_us:
            return "half_closed_by_us";
        case socket_state::closing:
            return "closing";
        case socket_state::closed:
            return "closed";
        case socket_state::listening:
            return "listening";
    }
    return "unknown";
}

namespace {

// A Unix stream socket has no FIN states: what each side has finished is in the shutdown bits,
// and the kernel sets both on the survivor when its peer closes.
socket_state classify_unix(const kernel_socket& s) noexcept {
    if (s.state == tcp_state::listen) return socket_state::listening;
    if (s.state != tcp_state::established) return socket_state::opening;
    if (s.unix_peer_gone) return socket_state::half_closed_by_peer;
    const bool rd = s.shut(shutdown_read);
    const bool wr = s.shut(shutdown_write);
    if (rd && wr) return socket_state::closing;
    if (rd) return socket_state::half_closed_by_peer;
    if (wr) return socket_state::half_closed_by_us;
    return socket_state::open;
}

}  // namespace

socket_state classify(const kernel_socket& s) noexcept {
    if (s.is_unix()) return classify_unix(s);
    switch (s.state) {
        case tcp_state::listen:
            return socket_state::listening;
        case tcp_state::syn_sent:
        case tcp_state::syn_recv:
        case tcp_state::new_syn_recv:
            return socket_state::opening;
        default:
            break;
    }
    if (s.inode == 0) return socket_state::closed;
    switch (s.state) {
        case tcp_state::established:
            return s.shut(shutdown_write) ? socket_state::half_closed_by_us : socket_state::open;
        case tcp_state::close_wait:
            return socket_state::half_closed_by_peer;
        case tcp_state::fin_wait1:
        case tcp_state::fin_wait2:
            return socket_state::half_closed_by_us;
        case tcp_state::last_ack:
        case tcp_state::closing:
            return socket_state::closing;
        case tcp_state::time_wait:
        case tcp_state::close:
            return socket_state::closed;
        default:
            // A state this code does not know (a newer kernel's): not a connection that ended.
            return socket_state::opening;
    }
}

bool peer_fin_received(const kernel_socket& s) noexcept {
    if (s.kind != socket_kind::tcp) return false;
    switch (s.state) {
        case tcp_state::close_wait:
        case tcp_state::last_ack:
        case tcp_state::closing:
        case tcp_state::time_wait:
            return true;
        default:
            return false;
    }
}

std::uint32_t unread_bytes(const kernel_socket& s) noexcept {
    if (s.is_listener()) return 0;
    if (peer_fin_received(s) && s.recv_queue > 0) return s.recv_queue - 1;
    return s.recv_queue;
}

bool end_of_stream_read(const kernel_socket& s) noexcept {
    return peer_fin_received(s) && s.recv_queue == 0;
}

bool left_to_kernel(const kernel_socket& s) noexcept {
    if (s.kind != socket_kind::tcp || s.inode != 0) return false;
    switch (s.state) {
        case tcp_state::fin_wait1:
        case tcp_state::fin_wait2:
        case tcp_state::closing:
        case tcp_state::last_ack:
            return true;
        default:
            return false;
    }
}

std::optional<std::chrono::milliseconds> send_stall_bound(const kernel_socket& s) noexcept {
    if (s.is_unix() || s.is_listener() || !s.tcp || s.send_queue == 0) return std::nullopt;
    const auto& t = *s.tcp;
    if (s.timer != tcp_timer::retransmit) return std::chrono::milliseconds(t.last_data_sent_ms);
    const bool zero_window = t.peer_window && *t.peer_window == 0;
    const unsigned n = s.timer_retries > 0 ? s.timer_retries : zero_window ? t.backoff : 0U;
    if (n == 0) return std::nullopt;
    const std::uint64_t rto = t.rto_us;
    const std::uint64_t part = n >= 32 ? 1 : (rto + (1ULL << n) - 1) >> n;  // rto * 2^-n, up
    return std::chrono::milliseconds(static_cast<std::int64_t>((rto - std::min(rto, part)) / 1000));
}

}  // namespace orderly::diag
