#pragma once
// Packet capture on the loopback interface with an AF_PACKET socket, so the lab can show the real
// segments (SYN, FIN, RST, ACK, data) next to the calls that caused them. Needs CAP_NET_RAW.

#include <cstdint>
#include <string>
#include <vector>

#include "orderly/core/unique_fd.hpp"

namespace orderly::cli {

inline constexpr std::uint8_t tcp_fin = 0x01;
inline constexpr std::uint8_t tcp_syn = 0x02;
inline constexpr std::uint8_t tcp_rst = 0x04;
inline constexpr std::uint8_t tcp_psh = 0x08;
inline constexpr std::uint8_t tcp_ack = 0x10;

struct captured_segment {
    std::int64_t realtime_ns = 0;  // kernel timestamp (CLOCK_REALTIME)
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint8_t flags = 0;
    std::uint32_t payload = 0;  // TCP payload bytes
    std::uint32_t seq = 0;      // sequence number of the first byte (or of the SYN/FIN)
};

// "SYN,ACK", "FIN,ACK", "RST", ... (PSH left out: it says nothing about how connections end).
std::string flags_to_string(std::uint8_t flags);

class packet_capture {
  public:
    // Starts capturing on `lo`. On failure returns false and says why in `why` (for example
    // "AF_PACKET needs CAP_NET_RAW (run as root): Operation not permitted").
    bool open(std::string& why);
    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    // From now on queue only IPv4 TCP segments from or to `port` (a socket filter in the kernel,
    // so other programs' traffic on a busy lo neither floods the queue nor keeps take() reading),
    // and drop what was queued before.
    void follow_port(std::uint16_t port);
    // Everything captured so far (without waiting) that has `port` as source or destination.
    // Reads at most a bounded number of packets.
    std::vector<captured_segment> take(std::uint16_t port);

  private:
    unique_fd fd_;
};

}  // namespace orderly::cli
