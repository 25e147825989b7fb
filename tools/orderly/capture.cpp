// AF_PACKET capture on lo. SOCK_DGRAM strips the (fake) Ethernet header, so what we read starts at
// the IP header; loopback shows every packet twice (outgoing and incoming), we keep the incoming.

#include "capture.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "orderly/core/errc.hpp"

namespace orderly::cli {

std::string flags_to_string(std::uint8_t flags) {
    std::string s;
    auto add = [&](std::uint8_t bit, const char* name) {
        if ((flags & bit) == 0) return;
        if (!s.empty()) s += ',';
        s += name;
    };
    add(tcp_syn, "SYN");
    add(tcp_fin, "FIN");
    add(tcp_rst, "RST");
    add(tcp_ack, "ACK");
    return s.empty() ? "-" : s;
}

bool packet_capture::open(std::string& why) {
    const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (fd < 0) {
        const int err = errno;
        why = std::string(
                  "capturing needs an AF_PACKET socket, which needs CAP_NET_RAW (run as "
                  "root): ") +
              orderly::errno_code(err).message();
        return false;
    }
    unique_fd owned(fd);
    const unsigned index = ::if_nametoindex("lo");
    if (index == 0) {
        why = "no loopback interface 'lo' in this network namespace";
        return false;
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(index);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) {
        why = std::string("binding the capture socket to lo failed: ") +
              orderly::errno_code(errno).message();
        return false;
    }
    // Other programs use lo too; room for a scenario's traffic even when they are busy. FORCE
    // works as root beyond rmem_max; the plain option is the fallback.
    const int size = 16 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    const int on = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    fd_ = std::move(owned);
    return true;
}

namespace {

std::uint16_t load16(const unsigned char* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// Parses an IPv4 or IPv6 packet carrying TCP. False for anything else.
bool parse_tcp(const unsigned char* p, std::size_t len, captured_segment& seg) {
    if (len < 1) return false;
    const unsigned version = p[0] >> 4;
    std::size_t ip_header = 0;
    std::size_t ip_total = 0;
    if (version == 4) {
        if (len < 20 || p[9] != IPPROTO_TCP) return false;
        ip_header = static_cast<std::size_t>(p[0] & 0x0f) * 4;
        ip_total = load16(p + 2);
    } else if (version == 6) {
        // Only a TCP header right after the fixed header (what loopback TCP produces).
        if (len < 40 || p[6] != IPPROTO_TCP) return false;
        ip_header = 40;
        ip_total = 40 + std::size_t{load16(p + 4)};
    } else {
        return false;
    }
    if (len < ip_header + 20) return false;
    const unsigned char* tcp = p + ip_header;
    const std::size_t tcp_header = static_cast<std::size_t>(tcp[12] >> 4) * 4;
    seg.src_port = load16(tcp);
    seg.dst_port = load16(tcp + 2);
    seg.flags = tcp[13];
    seg.seq = static_cast<std::uint32_t>(load16(tcp + 4)) << 16 | load16(tcp + 6);
    seg.payload = ip_total > ip_header + tcp_header
                      ? static_cast<std::uint32_t>(ip_total - ip_header - tcp_header)
                      : 0;
    return true;
}

}  // namespace

void packet_capture::follow_port(std::uint16_t port) {
    if (!fd_.valid()) return;
    // What SOCK_DGRAM hands us starts at the IP header. Keep IPv4 TCP, unfragmented, with the
    // port on either side; everything else never reaches the queue.
    const sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),                   // protocol
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 8),  // else drop
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),                   // flags + fragment offset
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 6, 0),      // a fragment: drop
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                  // X = header length
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),                   // source port
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 2, 0),         // keep
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),                   // destination port
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 1),         // keep, else drop
        BPF_STMT(BPF_RET | BPF_K, 0x40000),                      // keep
        BPF_STMT(BPF_RET | BPF_K, 0),                            // drop
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]),
                    const_cast<sock_filter*>(code)};
    (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
    (void)take(0);  // what was queued before the filter belongs to nobody here
}

std::vector<captured_segment> packet_capture::take(std::uint16_t port) {
    std::vector<captured_segment> out;
    if (!fd_.valid()) return out;
    // Headers are all we need; MSG_TRUNC keeps the rest of each packet out of our buffer.
    unsigned char buf[256];
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(timespec))];
    // A bound, in case something floods the port we follow: a scenario makes a few dozen.
    for (int budget = 100000; budget > 0; --budget) {
        sockaddr_ll from{};
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // EAGAIN: nothing more queued
        }
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        captured_segment seg;
        const std::size_t have = std::min(static_cast<std::size_t>(n), sizeof buf);
        if (!parse_tcp(buf, have, seg)) continue;
        if (seg.src_port != port && seg.dst_port != port) continue;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                timespec ts{};
                std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                seg.realtime_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
            }
        }
        if (seg.realtime_ns == 0) {
            timespec ts{};
            ::clock_gettime(CLOCK_REALTIME, &ts);
            seg.realtime_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
        }
        out.push_back(seg);
    }
    return out;
}

}  // namespace orderly::cli
