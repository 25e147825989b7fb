#include "orderly/diag/sock_diag.hpp"

// The kernel's own headers: struct tcp_info here has the fields glibc's <netinet/tcp.h> lacks.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>

#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly::diag {
namespace {

using bytes_view = std::span<const std::byte>;

// Every read of the reply goes through memcpy: the buffer has no alignment guarantee (a fuzzer's
// input certainly has none), and the caller has checked that `sizeof(T)` bytes are there.
template <class T>
T load(bytes_view b, std::size_t offset) {
    T v{};
    std::memcpy(&v, b.data() + offset, sizeof v);
    return v;
}

// memcpy of the first min(b.size(), n) bytes of `b`; nothing (not even a null pointer) for an
// empty span, whose data() may be null.
void copy_prefix(void* to, std::size_t n, bytes_view b) {
    if (!b.empty()) std::memcpy(to, b.data(), b.size() < n ? b.size() : n);
}

std::size_t align4(std::size_t n) {
    return (n + 3) & ~static_cast<std::size_t>(3);
}

failure<error_info> malformed(std::size_t offset, const std::string& what) {
    return fail(errno_code(EBADMSG),
                "malformed sock_diag reply at byte " + std::to_string(offset) + ": " + what);
}

tcp_state state_from_kernel(std::uint8_t s) noexcept {
    if (s >= static_cast<std::uint8_t>(tcp_state::established) &&
        s <= static_cast<std::uint8_t>(tcp_state::new_syn_recv)) {
        return static_cast<tcp_state>(s);
    }
    return tcp_state::unknown;
}

template <class Request>
std::vector<std::byte> request_bytes(const Request& body, std::uint32_t seq) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof body));
    h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h.nlmsg_seq = seq;
    std::vector<std::byte> out(NLMSG_ALIGN(h.nlmsg_len));
    std::memcpy(out.data(), &h, sizeof h);
    std::memcpy(out.data() + NLMSG_HDRLEN, &body, sizeof body);
    return out;
}

// Calls fn(type, payload, offset) for each attribute in `attrs`, which starts at byte `base` of
// the datagram (for error messages).
template <class F>
result<void, error_info> for_each_attribute(bytes_view attrs, std::size_t base, F&& fn) {
    std::size_t off = 0;
    while (off < attrs.size()) {
        if (attrs.size() - off < sizeof(nlattr)) {
            return malformed(base + off, std::to_string(attrs.size() - off) +
                                             " bytes left, too few for an attribute header");
        }
        const auto a = load<nlattr>(attrs, off);
        if (a.nla_len < sizeof(nlattr) || a.nla_len > attrs.size() - off) {
            return malformed(base + off, "attribute of " + std::to_string(a.nla_len) +
                                             " bytes where " + std::to_string(attrs.size() - off) +
                                             " remain");
        }
        fn(a.nla_type & NLA_TYPE_MASK,
           attrs.subspan(off + sizeof(nlattr), a.nla_len - sizeof(nlattr)));
        off += align4(a.nla_len);
    }
    return {};
}

tcp_details tcp_details_from(bytes_view b) {
    // Older kernels send a shorter struct, newer ones a longer one: take what both know.
    ::tcp_info ti{};
    copy_prefix(&ti, sizeof ti, b);
    tcp_details d;
    d.rtt_us = ti.tcpi_rtt;
    d.rto_us = ti.tcpi_rto;
    d.last_data_sent_ms = ti.tcpi_last_data_sent;
    d.last_data_recv_ms = ti.tcpi_last_data_recv;
    d.last_ack_recv_ms = ti.tcpi_last_ack_recv;
    d.unacked_segments = ti.tcpi_unacked;
    d.total_retransmits = ti.tcpi_total_retrans;
    d.retransmits = ti.tcpi_retransmits;
    d.probes = ti.tcpi_probes;
    d.backoff = ti.tcpi_backoff;
    d.bytes_acked = ti.tcpi_bytes_acked;
    d.bytes_received = ti.tcpi_bytes_received;
    d.notsent_bytes = ti.tcpi_notsent_bytes;
    if (b.size() >= offsetof(::tcp_info, tcpi_snd_wnd) + sizeof ti.tcpi_snd_wnd) {
        d.peer_window = ti.tcpi_snd_wnd;
    }
    return d;
}

memory_details memory_from(bytes_view b) {
    std::uint32_t v[SK_MEMINFO_VARS] = {};
    copy_prefix(v, sizeof v, b);
    memory_details m;
    m.rmem_alloc = v[SK_MEMINFO_RMEM_ALLOC];
    m.rcvbuf = v[SK_MEMINFO_RCVBUF];
    m.wmem_alloc = v[SK_MEMINFO_WMEM_ALLOC];
    m.sndbuf = v[SK_MEMINFO_SNDBUF];
    m.wmem_queued = v[SK_MEMINFO_WMEM_QUEUED];
    m.drops = v[SK_MEMINFO_DROPS];
    return m;
}

endpoint inet_endpoint(int family, const std::uint32_t (&addr)[4], std::uint16_t port_be,
                       std::uint32_t ifindex) {
    if (family == AF_INET) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = port_be;
        std::memcpy(&sin.sin_addr, addr, sizeof sin.sin_addr);
        return *endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = port_be;
    std::memcpy(&sin6.sin6_addr, addr, sizeof sin6.sin6_addr);
    // A scope id only means something for link-local addresses (fe80::/10).
    if (IN6_IS_ADDR_LINKLOCAL(&sin6.sin6_addr)) sin6.sin6_scope_id = ifindex;
    return *endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

// An empty name is an unnamed socket (a client's, or one of a socketpair): "unix:(unnamed)".
endpoint unix_endpoint(bytes_view name) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    const std::size_t n = name.size() < sizeof sun.sun_path ? name.size() : sizeof sun.sun_path;
    copy_prefix(sun.sun_path, n, name);
    auto e = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sun),
                                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
    return e ? *e : endpoint{};
}

result<kernel_socket, error_info> parse_inet(bytes_view p, std::size_t base) {
    if (p.size() < sizeof(inet_diag_msg)) {
        return malformed(base, "inet_diag_msg of " + std::to_string(p.size()) +
                                   " bytes, expected " + std::to_string(sizeof(inet_diag_msg)));
    }
    const auto m = load<inet_diag_msg>(p, 0);
    kernel_socket s;
    s.kind = socket_kind::tcp;
    s.state = state_from_kernel(m.idiag_state);
    s.timer = static_cast<tcp_timer>(m.idiag_timer);
    s.timer_retries = m.idiag_retrans;
    s.timer_expires_ms = m.idiag_expires;
    s.recv_queue = m.idiag_rqueue;
    s.send_queue = m.idiag_wqueue;
    s.uid = m.idiag_uid;
    s.inode = m.idiag_inode;
    s.cookie = static_cast<std::uint64_t>(m.id.idiag_cookie[1]) << 32 | m.id.idiag_cookie[0];
    s.local = inet_endpoint(m.idiag_family, m.id.idiag_src, m.id.idiag_sport, m.id.idiag_if);
    // A listener has no peer (the kernel reports the wildcard address, port 0).
    if (s.state != tcp_state::listen) {
        s.peer = inet_endpoint(m.idiag_family, m.id.idiag_dst, m.id.idiag_dport, m.id.idiag_if);
    }
    auto attrs = for_each_attribute(p.subspan(sizeof(inet_diag_msg)), base + sizeof(inet_diag_msg),
                                    [&s](unsigned type, bytes_view a) {
                                        if (type == INET_DIAG_INFO) {
                                            s.tcp = tcp_details_from(a);
                                        } else if (type == INET_DIAG_SHUTDOWN && !a.empty()) {
                                            s.shutdown = static_cast<std::uint8_t>(a[0]);
                                        } else if (type == INET_DIAG_SKMEMINFO) {
                                            s.memory = memory_from(a);
                                        }
                                    });
    if (!attrs) return failure{attrs.error()};
    return s;
}

result<std::optional<kernel_socket>, error_info> parse_unix(bytes_view p, std::size_t base) {
    if (p.size() < sizeof(unix_diag_msg)) {
        return malformed(base, "unix_diag_msg of " + std::to_string(p.size()) +
                                   " bytes, expected " + std::to_string(sizeof(unix_diag_msg)));
    }
    const auto m = load<unix_diag_msg>(p, 0);
    kernel_socket s;
    switch (m.udiag_type) {
        case SOCK_STREAM:
            s.kind = socket_kind::unix_stream;
            break;
        case SOCK_DGRAM:
            s.kind = socket_kind::unix_dgram;
            break;
        case SOCK_SEQPACKET:
            s.kind = socket_kind::unix_seqpacket;
            break;
        default:
            return std::optional<kernel_socket>{};
    }
    s.state = state_from_kernel(m.udiag_state);
    s.inode = m.udiag_ino;
    s.cookie = static_cast<std::uint64_t>(m.udiag_cookie[1]) << 32 | m.udiag_cookie[0];
    s.local = unix_endpoint({});
    auto attrs = for_each_attribute(
        p.subspan(sizeof(unix_diag_msg)), base + sizeof(unix_diag_msg),
        [&s](unsigned type, bytes_view a) {
            if (type == UNIX_DIAG_NAME) {
                s.local = unix_endpoint(a);
            } else if (type == UNIX_DIAG_PEER && a.size() >= 4) {
                s.unix_peer_inode = load<std::uint32_t>(a, 0);
            } else if (type == UNIX_DIAG_RQLEN && a.size() >= sizeof(unix_diag_rqlen)) {
                const auto q = load<unix_diag_rqlen>(a, 0);
                s.recv_queue = q.udiag_rqueue;
                s.send_queue = q.udiag_wqueue;
            } else if (type == UNIX_DIAG_MEMINFO) {
                s.memory = memory_from(a);
            } else if (type == UNIX_DIAG_SHUTDOWN && !a.empty()) {
                s.shutdown = static_cast<std::uint8_t>(a[0]);
            } else if (type == UNIX_DIAG_UID && a.size() >= 4) {
                s.uid = load<std::uint32_t>(a, 0);
            }
        });
    if (!attrs) return failure{attrs.error()};
    return std::optional<kernel_socket>{s};
}

// The errno an NLMSG_ERROR or NLMSG_DONE carries (negative in the message).
int carried_errno(int raw) {
    if (raw == 0) return 0;
    if (raw > 0) return raw;
    return raw == INT32_MIN ? EINVAL : -raw;
}

}  // namespace

std::vector<std::byte> tcp_dump_request(int family, std::uint32_t seq) {
    inet_diag_req_v2 r{};
    r.sdiag_family = static_cast<std::uint8_t>(family);
    r.sdiag_protocol = IPPROTO_TCP;
    r.idiag_ext = (1U << (INET_DIAG_INFO - 1)) | (1U << (INET_DIAG_SKMEMINFO - 1));
    // Bit n is TCP state n. Every state from ESTABLISHED (1) to CLOSING (11) but TIME_WAIT (6):
    // no descriptor holds a TIME_WAIT socket and no program can do anything about one, and a
    // busy machine has tens of thousands of them (the dump would take most of a snapshot's
    // time). FIN_WAIT2 sockets the kernel keeps as timewait sockets still come, as FIN_WAIT2.
    // Not the bound-but-inactive sockets of newer kernels (13), which are no connection at all.
    r.idiag_states = 0x0fbeU;
    return request_bytes(r, seq);
}

std::vector<std::byte> unix_dump_request(std::uint32_t seq) {
    unix_diag_req r{};
    r.sdiag_family = AF_UNIX;
    r.udiag_states = ~0U;
    r.udiag_show =
        UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO | UDIAG_SHOW_UID;
    return request_bytes(r, seq);
}

result<reply_part, error_info> parse_reply(bytes_view bytes, std::uint32_t seq) {
    reply_part out;
    std::size_t off = 0;
    while (off < bytes.size()) {
        const std::size_t left = bytes.size() - off;
        if (left < sizeof(nlmsghdr)) {
            return malformed(off, std::to_string(left) + " bytes left, too few for a header");
        }
        const auto h = load<nlmsghdr>(bytes, off);
        if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > left) {
            return malformed(off, "message of " + std::to_string(h.nlmsg_len) + " bytes where " +
                                      std::to_string(left) + " remain");
        }
        if (h.nlmsg_seq != seq) {
            return malformed(off, "answer to request " + std::to_string(h.nlmsg_seq) +
                                      ", expected " + std::to_string(seq));
        }
        if ((h.nlmsg_flags & NLM_F_DUMP_INTR) != 0) out.interrupted = true;
        const std::size_t body = off + sizeof(nlmsghdr);
        const bytes_view payload = bytes.subspan(body, h.nlmsg_len - sizeof(nlmsghdr));
        if (h.nlmsg_type == NLMSG_DONE) {
            out.done = true;
            const int err = payload.size() >= 4 ? carried_errno(load<int>(payload, 0)) : 0;
            if (err != 0) {
                return fail(errno_code(err), "the kernel ended the socket dump with an error: " +
                                                 errno_code(err).message());
            }
            return out;
        }
        if (h.nlmsg_type == NLMSG_ERROR) {
            if (payload.size() < 4) return malformed(off, "NLMSG_ERROR without its error code");
            const int err = carried_errno(load<int>(payload, 0));
            if (err != 0) {
                return fail(errno_code(err),
                            "the kernel refused the socket dump: " + errno_code(err).message());
            }
        } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            if (payload.empty()) return malformed(off, "empty sock_diag message");
            const auto family = static_cast<std::uint8_t>(payload[0]);
            if (family == AF_INET || family == AF_INET6) {
                auto s = parse_inet(payload, body);
                if (!s) return failure{s.error()};
                out.sockets.push_back(*s);
            } else if (family == AF_UNIX) {
                auto s = parse_unix(payload, body);
                if (!s) return failure{s.error()};
                if (*s) out.sockets.push_back(**s);
            }
        } else if (h.nlmsg_type == NLMSG_OVERRUN) {
            return malformed(off, "the kernel reports an overrun (lost messages)");
        }
        // NLMSG_NOOP and types this code does not know carry nothing for us.
        off += align4(h.nlmsg_len);
    }
    return out;
}

void link_unix_peers(std::vector<kernel_socket>& table) {
    std::unordered_map<std::uint64_t, std::size_t> by_inode;
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (table[i].is_unix() && table[i].inode != 0) by_inode.emplace(table[i].inode, i);
    }
    for (auto& s : table) {
        if (!s.is_unix() || s.state != tcp_state::established) continue;
        const auto it = s.unix_peer_inode != 0 ? by_inode.find(s.unix_peer_inode) : by_inode.end();
        if (it != by_inode.end()) {
            s.peer = table[it->second].local;
            continue;
        }
        // A client whose connection waits in a backlog also has no peer in the table (the
        // server's socket has no inode before accept()), but only a closed peer leaves both of
        // our directions shut.
        s.unix_peer_gone = s.shut(shutdown_read | shutdown_write);
    }
}

namespace {

constexpr std::size_t receive_buffer = 64U << 10;

// A netlink socket in the namespace `netns_fd`: created on a short-lived thread that joins the
// namespace, so the calling thread's own namespace never changes.
result<unique_fd, error_info> open_diag_socket(int netns_fd) {
    auto open_here = [] {
        return unique_fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    };
    unique_fd fd;
    int err = 0;
    if (netns_fd < 0) {
        fd = open_here();
        if (!fd) err = errno;
    } else {
        std::thread t([&] {
            if (::setns(netns_fd, CLONE_NEWNET) != 0) {
                err = errno;
                return;
            }
            fd = open_here();
            if (!fd) err = errno;
        });
        t.join();
        if (err != 0 && !fd) {
            return fail(errno_code(err), "cannot enter the process's network namespace (setns: " +
                                             errno_code(err).message() +
                                             "); run as root, or inside it with nsenter");
        }
    }
    if (!fd) {
        return fail(errno_code(err),
                    "cannot open a sock_diag netlink socket: " + errno_code(err).message());
    }
    timeval tv{};
    tv.tv_sec = 5;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

struct dump_outcome {
    std::vector<kernel_socket> sockets;
    bool interrupted = false;
};

result<dump_outcome, error_info> dump_once(int fd, const std::vector<std::byte>& request,
                                           std::uint32_t seq, std::vector<std::byte>& buffer) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0) {
        return fail(errno_code(errno), "sock_diag request: " + errno_code(errno).message());
    }
    dump_outcome out;
    for (;;) {
        iovec iov{buffer.data(), buffer.size()};
        sockaddr_nl from{};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        const ssize_t n = ::recvmsg(fd, &msg, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                return fail(errno_code(ETIMEDOUT), "the kernel sent no sock_diag reply in 5 s");
            }
            return fail(errno_code(e), "sock_diag reply: " + errno_code(e).message());
        }
        if ((msg.msg_flags & MSG_TRUNC) != 0) {
            return fail(errno_code(EMSGSIZE), "a sock_diag reply did not fit in 64 KiB");
        }
        if (from.nl_pid != 0) continue;  // not from the kernel
        auto part = parse_reply(bytes_view(buffer.data(), static_cast<std::size_t>(n)), seq);
        if (!part) return failure{part.error()};
        out.interrupted = out.interrupted || part->interrupted;
        out.sockets.insert(out.sockets.end(), part->sockets.begin(), part->sockets.end());
        if (part->done) return out;
    }
}

}  // namespace

result<socket_table, error_info> dump_sockets(int netns_fd) {
    auto fd = open_diag_socket(netns_fd);
    if (!fd) return failure{fd.error()};
    std::vector<std::byte> buffer(receive_buffer);
    socket_table table;
    std::uint32_t seq = 0;
    const int families[] = {AF_INET, AF_INET6, AF_UNIX};
    for (const int family : families) {
        constexpr int attempts = 3;
        for (int attempt = 1;; ++attempt) {
            ++seq;
            const auto request =
                family == AF_UNIX ? unix_dump_request(seq) : tcp_dump_request(family, seq);
            auto got = dump_once(fd->get(), request, seq, buffer);
            // A kernel without IPv6 or without the unix_diag module has no such table to dump.
            if (!got && (got.error().code == errno_code(ENOENT) ||
                         got.error().code == errno_code(EAFNOSUPPORT))) {
                table.notes.push_back(std::string(family == AF_UNIX    ? "Unix"
                                                  : family == AF_INET6 ? "IPv6 TCP"
                                                                       : "IPv4 TCP") +
                                      " sockets are not examined: the kernel cannot dump them (" +
                                      got.error().code.message() + ")");
                break;
            }
            if (!got) return failure{got.error()};
            if (got->interrupted && attempt < attempts) continue;
            if (got->interrupted) table.complete = false;
            table.sockets.insert(table.sockets.end(), got->sockets.begin(), got->sockets.end());
            break;
        }
    }
    link_unix_peers(table.sockets);
    std::erase_if(table.sockets, [](const kernel_socket& s) {
        return s.is_unix() && s.kind != socket_kind::unix_stream;
    });
    return table;
}

}  // namespace orderly::diag
