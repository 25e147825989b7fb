#pragma once
// kernel_socket: one socket as netlink sock_diag reports it — one row of `ss -tanie` or `ss -xe` —
// before it is matched to the process that holds it; and the event layer's words for its state.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "orderly/net/endpoint.hpp"
#include "orderly/net/tcp_info.hpp"

namespace orderly::diag {

enum class socket_kind : std::uint8_t { tcp, unix_stream, unix_dgram, unix_seqpacket };
// "tcp", "unix_stream", "unix_dgram", "unix_seqpacket".
std::string_view to_string(socket_kind k) noexcept;

// The socket's sk_shutdown bits, as INET_DIAG_SHUTDOWN and UNIX_DIAG_SHUTDOWN carry them.
// shutdown_read: nothing more will arrive — the peer's FIN was received (TCP), the peer shut down
// writing or closed (Unix), or this side called shutdown(read).
inline constexpr std::uint8_t shutdown_read = 1;
// shutdown_write: this side called shutdown(write) or close(); on a Unix socket the kernel sets
// it too when the peer closes.
inline constexpr std::uint8_t shutdown_write = 2;
// "<->" both directions open, "-->" receiving is over, "<--" sending is over, "---" both, as
// `ss -e` prints them; "" for nullopt (the kernel reports none for TIME_WAIT and request sockets).
std::string_view shutdown_arrow(std::optional<std::uint8_t> mask) noexcept;

// inet_diag's idiag_timer: which TCP timer is pending.
enum class tcp_timer : std::uint8_t {
    off = 0,
    retransmit = 1,         // unacknowledged data (or a FIN) is being retransmitted
    keepalive = 2,          // keepalive, or the FIN_WAIT2 timer of a socket left to the kernel
    time_wait = 3,          // TIME_WAIT's 60 s
    zero_window_probe = 4,  // the persist timer: the peer's window is zero
};
// "off", "on", "keepalive", "timewait", "persist" (ss -o's words); "unknown" for other values.
std::string_view to_string(tcp_timer t) noexcept;

// What INET_DIAG_INFO (the kernel's struct tcp_info) says that the doctor uses.
struct tcp_details {
    std::uint32_t rtt_us = 0;
    std::uint32_t rto_us = 0;
    std::uint32_t last_data_sent_ms = 0;  // since this side last sent new data
    std::uint32_t last_data_recv_ms = 0;  // since data last arrived
    std::uint32_t last_ack_recv_ms = 0;   // since the peer last sent any segment (an ACK)
    std::uint32_t unacked_segments = 0;
    std::uint32_t total_retransmits = 0;
    std::uint8_t retransmits = 0;  // consecutive timeouts of the segment now being retransmitted
    std::uint8_t probes = 0;       // unanswered zero-window or keepalive probes
    std::uint8_t backoff = 0;
    std::uint64_t bytes_acked = 0;
    std::uint64_t bytes_received = 0;
    std::uint32_t notsent_bytes = 0;
    std::optional<std::uint32_t> peer_window;  // tcpi_snd_wnd, when the kernel is new enough
};

// The socket's memory (INET_DIAG_SKMEMINFO / UNIX_DIAG_MEMINFO, the SK_MEMINFO_* array).
struct memory_details {
    std::uint32_t rmem_alloc = 0;  // bytes held by the receive queue
    std::uint32_t rcvbuf = 0;
    std::uint32_t wmem_alloc = 0;
    std::uint32_t sndbuf = 0;
    std::uint32_t wmem_queued = 0;  // bytes queued for sending
    std::uint32_t drops = 0;        // packets dropped for lack of room
};

struct kernel_socket {
    socket_kind kind = socket_kind::tcp;
    // Unix sockets use the same numbers: ESTABLISHED (connected), LISTEN, CLOSE (unconnected).
    tcp_state state = tcp_state::unknown;
    std::optional<std::uint8_t> shutdown;  // shutdown_read | shutdown_write
    tcp_timer timer = tcp_timer::off;
    std::uint32_t timer_expires_ms = 0;
    std::uint8_t timer_retries = 0;  // retransmissions or probes sent for the pending timer
    // As ss's Recv-Q and Send-Q: unread and unacknowledged-or-unsent bytes; for a listener, the
    // connections waiting in its accept queue and the queue's limit (the backlog).
    std::uint32_t recv_queue = 0;
    std::uint32_t send_queue = 0;
    std::optional<std::uint32_t> uid;  // the socket's owner, when the kernel says
    std::uint64_t inode = 0;           // 0: no descriptor refers to it (left to the kernel)
    std::uint64_t cookie = 0;          // the kernel's identifier, stable for the socket's life
    endpoint local;
    endpoint peer;
    std::uint64_t unix_peer_inode = 0;  // Unix: the connected peer's inode (0: none)
    bool unix_peer_gone = false;        // Unix: connected, and the peer's socket no longer exists
    std::optional<tcp_details> tcp;
    std::optional<memory_details> memory;

    [[nodiscard]] bool is_listener() const noexcept { return state == tcp_state::listen; }
    [[nodiscard]] bool is_unix() const noexcept { return kind != socket_kind::tcp; }
    [[nodiscard]] bool shut(std::uint8_t bits) const noexcept {
        return shutdown && (*shutdown & bits) == bits;
    }
};

// A socket's state in the event layer's words (orderly::connection_state), plus the two states a
// connection object never has: `opening` (SYN_SENT, SYN_RECV, an unconnected Unix socket) and
// `listening`.
enum class socket_state : std::uint8_t {
    opening,
    open,                 // both directions open
    half_closed_by_peer,  // the peer finished sending (CLOSE_WAIT); we may still write
    half_closed_by_us,    // we sent FIN (FIN_WAIT1/2); still reading
    closing,              // both sides finished, the last ACK pending (LAST_ACK, CLOSING)
    closed,               // no descriptor left: TIME_WAIT, or a socket left to the kernel
    listening,
};
std::string_view to_string(socket_state s) noexcept;

// The state word of `s`. A TCP socket with no inode is `closed` whatever its TCP state: the
// program released it and only the kernel is still ending it.
socket_state classify(const kernel_socket& s) noexcept;

// TCP: the peer's FIN has arrived (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT).
bool peer_fin_received(const kernel_socket& s) noexcept;
// The bytes a read would still return. recv_queue counts the peer's FIN too, until the program
// reads the end of stream (recv() returns 0); close() resets only for these bytes, not the FIN.
std::uint32_t unread_bytes(const kernel_socket& s) noexcept;
// TCP: the peer's FIN arrived and the program has read the end of stream.
bool end_of_stream_read(const kernel_socket& s) noexcept;

// TCP with bytes queued: how long one look at TCP_INFO proves that the send queue has not moved,
// or nullopt when one look cannot tell. Without a pending retransmission, nothing has been
// retransmitted, so it is last_data_sent (zero-window probes carry no data). With one, every
// retransmission resets last_data_sent and every duplicate ACK last_ack_recv; but n timeouts in
// a row without an acknowledgement (timer_retries, or tcpi_backoff when the peer's window is
// zero, where retransmissions are not counted) each doubled the timeout, so at least
// rto * (1 - 2^-n) has passed since anything was acknowledged.
std::optional<std::chrono::milliseconds> send_stall_bound(const kernel_socket& s) noexcept;

// A TCP socket that no descriptor holds any more and that the kernel is still ending for the
// program that closed it: FIN_WAIT1, FIN_WAIT2, CLOSING or LAST_ACK (not TIME_WAIT).
bool left_to_kernel(const kernel_socket& s) noexcept;

}  // namespace orderly::diag
