#include "orderly/diag/sock_diag.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "diag_test_util.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/listener.hpp"
#include "support/loopback.hpp"
#include "support/netns.hpp"

namespace orderly::diag {
namespace {

using bytes = std::vector<std::byte>;
using test::eventually;
using test::inode_of;

template <class T>
bytes raw(const T& v) {
    bytes b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

void append(bytes& to, const bytes& b) {
    to.insert(to.end(), b.begin(), b.end());
}

// One attribute: header, payload, padding to 4 bytes.
bytes attr(std::uint16_t type, const bytes& payload) {
    nlattr a{};
    a.nla_len = static_cast<std::uint16_t>(sizeof a + payload.size());
    a.nla_type = type;
    bytes b = raw(a);
    append(b, payload);
    b.resize((b.size() + 3) & ~std::size_t{3});
    return b;
}

bytes u8(std::uint8_t v) {
    return bytes{static_cast<std::byte>(v)};
}

// One netlink message around `payload`, padded like the kernel pads it.
bytes message(std::uint16_t type, std::uint32_t seq, const bytes& payload,
              std::uint16_t flags = NLM_F_MULTI) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(sizeof h + payload.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    bytes b = raw(h);
    append(b, payload);
    b.resize(NLMSG_ALIGN(b.size()));
    return b;
}

bytes done(std::uint32_t seq, int err = 0) {
    return message(NLMSG_DONE, seq, raw(err));
}

inet_diag_msg close_wait_msg() {
    inet_diag_msg m{};
    m.idiag_family = AF_INET;
    m.idiag_state = 8;  // CLOSE_WAIT
    m.idiag_timer = 2;
    m.idiag_retrans = 3;
    m.idiag_expires = 500;
    m.idiag_rqueue = 6;
    m.idiag_wqueue = 0;
    m.idiag_uid = 1000;
    m.idiag_inode = 4242;
    m.id.idiag_sport = htons(8000);
    m.id.idiag_dport = htons(40000);
    m.id.idiag_src[0] = htonl(0x7f000001);
    m.id.idiag_dst[0] = htonl(0x7f000002);
    m.id.idiag_cookie[0] = 1;
    m.id.idiag_cookie[1] = 2;
    return m;
}

bytes with_attrs(const inet_diag_msg& m, const std::vector<bytes>& attrs) {
    bytes b = raw(m);
    for (const auto& a : attrs)
        append(b, a);
    return b;
}

constexpr std::uint32_t seq = 77;

TEST(sock_diag, tcp_request_asks_for_info_memory_and_every_state_but_time_wait) {
    const bytes req = tcp_dump_request(AF_INET6, 9);
    ASSERT_EQ(req.size(), NLMSG_ALIGN(NLMSG_LENGTH(sizeof(inet_diag_req_v2))));
    nlmsghdr h{};
    std::memcpy(&h, req.data(), sizeof h);
    EXPECT_EQ(h.nlmsg_len, NLMSG_LENGTH(sizeof(inet_diag_req_v2)));
    EXPECT_EQ(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
    EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
    EXPECT_EQ(h.nlmsg_seq, 9U);
    inet_diag_req_v2 r{};
    std::memcpy(&r, req.data() + NLMSG_HDRLEN, sizeof r);
    EXPECT_EQ(r.sdiag_family, AF_INET6);
    EXPECT_EQ(r.sdiag_protocol, IPPROTO_TCP);
    EXPECT_NE(r.idiag_ext & (1U << (INET_DIAG_INFO - 1)), 0U);
    EXPECT_NE(r.idiag_ext & (1U << (INET_DIAG_SKMEMINFO - 1)), 0U);
    for (int state = 1; state <= 11; ++state) {
        if (state == 6) {
            EXPECT_EQ(r.idiag_states & (1U << state), 0U) << "TIME_WAIT";
        } else {
            EXPECT_NE(r.idiag_states & (1U << state), 0U) << state;
        }
    }
    EXPECT_EQ(r.idiag_states & ~0xffeU, 0U);
}

TEST(sock_diag, unix_request_asks_for_name_peer_queues_memory_and_owner) {
    const bytes req = unix_dump_request(3);
    unix_diag_req r{};
    ASSERT_EQ(req.size(), NLMSG_ALIGN(NLMSG_LENGTH(sizeof r)));
    std::memcpy(&r, req.data() + NLMSG_HDRLEN, sizeof r);
    EXPECT_EQ(r.sdiag_family, AF_UNIX);
    EXPECT_EQ(r.udiag_states, ~0U);
    EXPECT_EQ(r.udiag_show,
              static_cast<std::uint32_t>(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN |
                                         UDIAG_SHOW_MEMINFO | UDIAG_SHOW_UID));
}

TEST(sock_diag, parses_every_field_of_a_tcp_socket) {
    ::tcp_info ti{};
    ti.tcpi_rtt = 25;
    ti.tcpi_rto = 204000;
    ti.tcpi_last_data_sent = 900;
    ti.tcpi_last_data_recv = 1300;
    ti.tcpi_last_ack_recv = 1234;
    ti.tcpi_probes = 4;
    ti.tcpi_total_retrans = 7;
    ti.tcpi_bytes_received = 5;
    ti.tcpi_snd_wnd = 0;
    std::uint32_t mem[SK_MEMINFO_VARS] = {};
    mem[SK_MEMINFO_RCVBUF] = 131072;
    mem[SK_MEMINFO_DROPS] = 2;
    bytes reply = message(SOCK_DIAG_BY_FAMILY, seq,
                          with_attrs(close_wait_msg(), {attr(INET_DIAG_SHUTDOWN, u8(1)),
                                                        attr(INET_DIAG_INFO, raw(ti)),
                                                        attr(INET_DIAG_SKMEMINFO, raw(mem))}));
    append(reply, done(seq));

    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    EXPECT_TRUE(part->done);
    EXPECT_FALSE(part->interrupted);
    ASSERT_EQ(part->sockets.size(), 1U);
    const auto& s = part->sockets[0];
    EXPECT_EQ(s.kind, socket_kind::tcp);
    EXPECT_EQ(s.state, tcp_state::close_wait);
    EXPECT_EQ(s.shutdown, std::optional<std::uint8_t>(1));
    EXPECT_EQ(s.timer, tcp_timer::keepalive);
    EXPECT_EQ(s.timer_retries, 3);
    EXPECT_EQ(s.timer_expires_ms, 500U);
    EXPECT_EQ(s.recv_queue, 6U);
    EXPECT_EQ(s.uid, std::optional<std::uint32_t>(1000));
    EXPECT_EQ(s.inode, 4242U);
    EXPECT_EQ(s.cookie, 0x200000001U);
    EXPECT_EQ(s.local.to_string(), "127.0.0.1:8000");
    EXPECT_EQ(s.peer.to_string(), "127.0.0.2:40000");
    ASSERT_TRUE(s.tcp.has_value());
    EXPECT_EQ(s.tcp->rtt_us, 25U);
    EXPECT_EQ(s.tcp->rto_us, 204000U);
    EXPECT_EQ(s.tcp->last_data_sent_ms, 900U);
    EXPECT_EQ(s.tcp->last_data_recv_ms, 1300U);
    EXPECT_EQ(s.tcp->last_ack_recv_ms, 1234U);
    EXPECT_EQ(s.tcp->probes, 4);
    EXPECT_EQ(s.tcp->total_retransmits, 7U);
    EXPECT_EQ(s.tcp->bytes_received, 5U);
    EXPECT_EQ(s.tcp->peer_window, std::optional<std::uint32_t>(0));
    ASSERT_TRUE(s.memory.has_value());
    EXPECT_EQ(s.memory->rcvbuf, 131072U);
    EXPECT_EQ(s.memory->drops, 2U);
}

TEST(sock_diag, a_shorter_tcp_info_from_an_older_kernel_leaves_the_new_fields_unknown) {
    ::tcp_info ti{};
    ti.tcpi_last_ack_recv = 55;
    ti.tcpi_snd_wnd = 999;  // beyond what an old kernel sends: must not be read
    bytes short_info = raw(ti);
    short_info.resize(offsetof(::tcp_info, tcpi_bytes_acked));
    bytes reply = message(SOCK_DIAG_BY_FAMILY, seq,
                          with_attrs(close_wait_msg(), {attr(INET_DIAG_INFO, short_info)}));
    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    ASSERT_EQ(part->sockets.size(), 1U);
    ASSERT_TRUE(part->sockets[0].tcp.has_value());
    EXPECT_EQ(part->sockets[0].tcp->last_ack_recv_ms, 55U);
    EXPECT_FALSE(part->sockets[0].tcp->peer_window.has_value());
    EXPECT_FALSE(part->done);

    // A newer kernel's longer struct is fine too.
    bytes long_info = raw(ti);
    long_info.resize(long_info.size() + 64);
    reply = message(SOCK_DIAG_BY_FAMILY, seq,
                    with_attrs(close_wait_msg(), {attr(INET_DIAG_INFO, long_info)}));
    part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    EXPECT_EQ(part->sockets[0].tcp->peer_window, std::optional<std::uint32_t>(999));
}

TEST(sock_diag, ipv6_listener_has_no_peer_and_link_local_addresses_keep_their_scope) {
    inet_diag_msg m{};
    m.idiag_family = AF_INET6;
    m.idiag_state = 10;  // LISTEN
    m.idiag_rqueue = 3;
    m.idiag_wqueue = 128;
    m.id.idiag_sport = htons(443);
    m.id.idiag_if = 2;
    const in6_addr ll = {{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};
    std::memcpy(m.id.idiag_src, &ll, sizeof ll);
    auto part = parse_reply(message(SOCK_DIAG_BY_FAMILY, seq, raw(m)), seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    ASSERT_EQ(part->sockets.size(), 1U);
    const auto& s = part->sockets[0];
    EXPECT_TRUE(s.is_listener());
    EXPECT_EQ(s.local.family(), address_family::ipv6);
    EXPECT_EQ(s.local.port(), 443);
    EXPECT_NE(s.local.to_string().find('%'), std::string::npos) << s.local.to_string();
    EXPECT_EQ(s.peer.family(), address_family::none);
    EXPECT_FALSE(s.shutdown.has_value());  // no attribute: unknown, not "open"
    EXPECT_FALSE(s.tcp.has_value());
}

bytes unix_msg(std::uint8_t type, std::uint32_t inode, const std::vector<bytes>& attrs) {
    unix_diag_msg m{};
    m.udiag_family = AF_UNIX;
    m.udiag_type = type;
    m.udiag_state = 1;
    m.udiag_ino = inode;
    m.udiag_cookie[0] = 5;
    bytes b = raw(m);
    for (const auto& a : attrs)
        append(b, a);
    return message(SOCK_DIAG_BY_FAMILY, seq, b);
}

bytes text(std::string_view s) {
    bytes b(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
}

TEST(sock_diag, parses_unix_sockets_of_every_type_with_names) {
    unix_diag_rqlen q{};
    q.udiag_rqueue = 11;
    q.udiag_wqueue = 22;
    bytes reply =
        unix_msg(SOCK_STREAM, 100,
                 {attr(UNIX_DIAG_NAME, text(std::string("/run/x.sock\0", 12))),
                  attr(UNIX_DIAG_PEER, raw(std::uint32_t{101})), attr(UNIX_DIAG_RQLEN, raw(q)),
                  attr(UNIX_DIAG_SHUTDOWN, u8(3)), attr(UNIX_DIAG_UID, raw(std::uint32_t{65534}))});
    append(reply, unix_msg(SOCK_STREAM, 101, {attr(UNIX_DIAG_NAME, text(std::string("\0ab", 3)))}));
    append(reply, unix_msg(SOCK_DGRAM, 102, {}));
    append(reply, unix_msg(SOCK_SEQPACKET, 103, {}));
    append(reply, unix_msg(SOCK_RAW, 104, {}));  // no such Unix type: skipped
    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    ASSERT_EQ(part->sockets.size(), 4U);
    const auto& a = part->sockets[0];
    EXPECT_EQ(a.kind, socket_kind::unix_stream);
    EXPECT_EQ(a.state, tcp_state::established);
    EXPECT_EQ(a.local.to_string(), "unix:/run/x.sock");
    EXPECT_EQ(a.unix_peer_inode, 101U);
    EXPECT_EQ(a.recv_queue, 11U);
    EXPECT_EQ(a.send_queue, 22U);
    EXPECT_EQ(a.shutdown, std::optional<std::uint8_t>(3));
    EXPECT_EQ(a.uid, std::optional<std::uint32_t>(65534));
    EXPECT_EQ(a.cookie, 5U);
    EXPECT_EQ(part->sockets[1].local.to_string(), "unix:@ab");
    EXPECT_EQ(part->sockets[2].kind, socket_kind::unix_dgram);
    EXPECT_EQ(part->sockets[2].local.to_string(), "unix:(unnamed)");
    EXPECT_EQ(part->sockets[3].kind, socket_kind::unix_seqpacket);
}

TEST(sock_diag, bytes_after_done_are_ignored) {
    bytes reply = done(seq);
    append(reply, text("garbage that is no netlink message"));
    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    EXPECT_TRUE(part->done);
    EXPECT_TRUE(part->sockets.empty());
}

TEST(sock_diag, kernel_errors_come_back_as_their_errno) {
    nlmsgerr e{};
    e.error = -EINVAL;
    auto part = parse_reply(message(NLMSG_ERROR, seq, raw(e)), seq);
    ASSERT_FALSE(part.has_value());
    EXPECT_EQ(part.error().code, errno_code(EINVAL));
    EXPECT_NE(part.error().message().find("refused"), std::string::npos);

    e.error = 0;  // an acknowledgement, not an error
    auto ack = parse_reply(message(NLMSG_ERROR, seq, raw(e)), seq);
    ASSERT_TRUE(ack.has_value()) << ack.error().message();

    auto failed = parse_reply(done(seq, -ENOBUFS), seq);
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, errno_code(ENOBUFS));
}

void expect_malformed(const bytes& reply, std::string_view detail) {
    auto part = parse_reply(reply, seq);
    ASSERT_FALSE(part.has_value());
    EXPECT_EQ(part.error().code, errno_code(EBADMSG));
    EXPECT_NE(part.error().message().find(detail), std::string::npos) << part.error().message();
}

TEST(sock_diag, malformed_replies_are_errors_that_say_where_and_what) {
    bytes good = message(SOCK_DIAG_BY_FAMILY, seq, raw(close_wait_msg()));
    expect_malformed(bytes(good.begin(), good.begin() + 10), "at byte 0: 10 bytes left");

    bytes longer = good;
    longer[0] = static_cast<std::byte>(200);  // nlmsg_len beyond the buffer
    expect_malformed(longer, "message of 200 bytes where 88 remain");

    bytes tiny = good;
    tiny[0] = static_cast<std::byte>(8);
    tiny[1] = tiny[2] = tiny[3] = std::byte{0};
    expect_malformed(tiny, "message of 8 bytes");

    bytes cut = raw(close_wait_msg());
    cut.resize(40);
    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq, cut),
                     "inet_diag_msg of 40 bytes, expected 72");
    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq, bytes{}), "empty sock_diag message");

    bytes bad_attr = raw(close_wait_msg());
    append(bad_attr, bytes{std::byte{2}, std::byte{0}, std::byte{8}, std::byte{0}});  // len 2 < 4
    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq, bad_attr), "at byte 88: attribute of 2");

    bytes long_attr = raw(close_wait_msg());
    append(long_attr, bytes{std::byte{40}, std::byte{0}, std::byte{8}, std::byte{0}});
    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq, long_attr), "attribute of 40 bytes");

    bytes stray = raw(close_wait_msg());
    append(stray, bytes{std::byte{1}});
    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq, stray), "too few for an attribute");

    expect_malformed(message(SOCK_DIAG_BY_FAMILY, seq + 1, raw(close_wait_msg())),
                     "answer to request 78, expected 77");
    expect_malformed(message(NLMSG_ERROR, seq, bytes{std::byte{1}}), "without its error code");
}

TEST(sock_diag, an_interrupted_dump_is_flagged) {
    bytes reply =
        message(SOCK_DIAG_BY_FAMILY, seq, raw(close_wait_msg()), NLM_F_MULTI | NLM_F_DUMP_INTR);
    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    EXPECT_TRUE(part->interrupted);
    EXPECT_EQ(part->sockets.size(), 1U);
}

TEST(sock_diag, other_families_and_message_types_are_skipped) {
    bytes other = raw(close_wait_msg());
    other[0] = static_cast<std::byte>(AF_PACKET);
    bytes reply = message(SOCK_DIAG_BY_FAMILY, seq, other);
    append(reply, message(NLMSG_NOOP, seq, bytes{}));
    append(reply, message(0x1234, seq, text("future")));
    append(reply, message(SOCK_DIAG_BY_FAMILY, seq, raw(close_wait_msg())));
    auto part = parse_reply(reply, seq);
    ASSERT_TRUE(part.has_value()) << part.error().message();
    EXPECT_EQ(part->sockets.size(), 1U);
}

TEST(sock_diag, unix_peers_are_linked_and_a_closed_peer_is_told_from_a_backlog) {
    std::vector<kernel_socket> t;
    t.push_back(test::unix_row(1, 2));  // connected to 2
    t.push_back(test::unix_row(2, 1));
    t[1].local = endpoint::parse("unix:/run/s.sock").value();
    t.push_back(test::unix_row(3, 99));  // peer gone: the kernel shut both directions
    t[2].shutdown = shutdown_read | shutdown_write;
    t.push_back(test::unix_row(4, 0));  // waits in a listener's backlog: no peer inode yet
    link_unix_peers(t);
    EXPECT_EQ(t[0].peer.to_string(), "unix:/run/s.sock");
    EXPECT_FALSE(t[0].unix_peer_gone);
    EXPECT_TRUE(t[2].unix_peer_gone);
    EXPECT_FALSE(t[3].unix_peer_gone);
}

const kernel_socket* by_inode(const socket_table& t, std::uint64_t inode) {
    for (const auto& s : t.sockets) {
        if (s.inode == inode) return &s;
    }
    return nullptr;
}

// A dump of this namespace that must succeed.
socket_table dump_here() {
    auto t = dump_sockets();
    EXPECT_TRUE(t.has_value()) << t.error().message();
    return t ? std::move(*t) : socket_table{};
}

TEST(sock_diag, dump_finds_real_tcp_sockets_with_their_state_and_queues) {
    auto pair = orderly::test::make_pair(orderly::test::transport::tcp4);
    const auto client = inode_of(pair.client.native_handle());
    const auto server = inode_of(pair.server.native_handle());
    auto t = dump_here();
    const auto* c = by_inode(t, client);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->state, tcp_state::established);
    EXPECT_EQ(c->local, pair.client.local_endpoint().value());
    EXPECT_EQ(c->peer, pair.client.peer_endpoint().value());
    EXPECT_EQ(c->shutdown, std::optional<std::uint8_t>(0));
    EXPECT_TRUE(c->tcp.has_value());
    EXPECT_TRUE(c->memory.has_value());
    EXPECT_NE(c->cookie, 0U);
    EXPECT_EQ(c->uid, std::optional<std::uint32_t>(::geteuid()));

    ASSERT_EQ(test::send_raw(pair.client.native_handle(), "12345"), 5);
    ASSERT_TRUE(pair.client.shutdown(shut::write).has_value());
    const kernel_socket* s = nullptr;
    const bool seen = eventually([&] {
        t = dump_here();
        s = by_inode(t, server);
        return s != nullptr && s->state == tcp_state::close_wait;
    });
    ASSERT_TRUE(seen);
    EXPECT_EQ(s->recv_queue, 6U);  // 5 bytes and the FIN, as ss shows it
    EXPECT_EQ(unread_bytes(*s), 5U);
    EXPECT_EQ(s->shutdown, std::optional<std::uint8_t>(shutdown_read));
    c = by_inode(t, client);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->state == tcp_state::fin_wait2 || c->state == tcp_state::fin_wait1);
    EXPECT_EQ(c->shutdown, std::optional<std::uint8_t>(shutdown_write));
}

TEST(sock_diag, dump_finds_listeners_with_their_backlog) {
    for (const auto transport : {orderly::test::transport::tcp4, orderly::test::transport::tcp6,
                                 orderly::test::transport::unix_path}) {
        if (transport == orderly::test::transport::tcp6 && !orderly::test::ipv6_available())
            continue;
        SCOPED_TRACE(orderly::test::to_string(transport));
        auto l = orderly::test::make_listener(transport);
        const auto t = dump_here();
        const auto* s = by_inode(t, inode_of(l.native_handle()));
        ASSERT_NE(s, nullptr);
        EXPECT_TRUE(s->is_listener());
        EXPECT_GT(s->send_queue, 0U);  // the backlog
        EXPECT_EQ(s->recv_queue, 0U);
        EXPECT_EQ(s->local, l.local_endpoint());
        EXPECT_EQ(s->peer.family(), address_family::none);
    }
}

TEST(sock_diag, dump_links_unix_peers_and_sees_a_peer_close) {
    auto pair = orderly::test::make_pair(orderly::test::transport::unix_path);
    const auto client = inode_of(pair.client.native_handle());
    const auto server = inode_of(pair.server.native_handle());
    auto t = dump_here();
    const auto* c = by_inode(t, client);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->kind, socket_kind::unix_stream);
    EXPECT_EQ(c->unix_peer_inode, server);
    EXPECT_EQ(c->peer, by_inode(t, server)->local);
    EXPECT_EQ(c->peer.family(), address_family::unix_path);

    ASSERT_EQ(test::send_raw(pair.server.native_handle(), "abc"), 3);
    (void)pair.server.close();
    t = dump_here();
    c = by_inode(t, client);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->unix_peer_gone);
    EXPECT_EQ(c->recv_queue, 3U);
    EXPECT_EQ(classify(*c), socket_state::half_closed_by_peer);
}

TEST(sock_diag, dump_reads_another_network_namespace) {
    orderly::test::netns_pair net;
    if (net.not_permitted()) GTEST_SKIP() << net.skip_reason();
    ASSERT_TRUE(net.ready()) << net.error();
    auto l = net.in(orderly::test::side::a,
                    [&] { return listener::listen(net.address(orderly::test::side::a)).value(); });
    const auto inode = inode_of(l.native_handle());
    const std::string path = "/run/netns/" + net.name(orderly::test::side::a);
    const unique_fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(ns.valid()) << path;

    auto there = dump_sockets(ns.get());
    ASSERT_TRUE(there.has_value()) << there.error().message();
    ASSERT_NE(by_inode(*there, inode), nullptr);
    EXPECT_EQ(by_inode(*there, inode)->local, l.local_endpoint());
    EXPECT_EQ(by_inode(dump_here(), inode), nullptr);
}

}  // namespace
}  // namespace orderly::diag
