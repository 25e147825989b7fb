#include "orderly/diag/findings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "diag_test_util.hpp"
#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag {
namespace {

using std::chrono::milliseconds;
using test::held;
using test::tcp_row;

kernel_socket conn(tcp_state st, std::uint64_t inode) {
    return tcp_row(st, "127.0.0.1:8000", "127.0.0.1:4" + std::to_string(inode), inode);
}

const finding* only(const std::vector<finding>& fs, finding_kind k) {
    const finding* f = nullptr;
    for (const auto& x : fs) {
        if (x.kind == k) {
            EXPECT_EQ(f, nullptr) << "two findings of kind " << to_string(k);
            f = &x;
        }
    }
    return f;
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

TEST(findings, kind_names_are_stable) {
    EXPECT_EQ(to_string(finding_kind::close_wait), "close_wait");
    EXPECT_EQ(to_string(finding_kind::unread_after_peer_eof), "unread_after_peer_eof");
    EXPECT_EQ(to_string(finding_kind::send_queue_stuck), "send_queue_stuck");
    EXPECT_EQ(to_string(finding_kind::fin_wait2), "fin_wait2");
    EXPECT_EQ(to_string(finding_kind::read_shut), "read_shut");
    EXPECT_EQ(to_string(finding_kind::orphaned), "orphaned");
    EXPECT_EQ(to_string(finding_kind::accept_queue_full), "accept_queue_full");
    EXPECT_EQ(to_string(finding_kind::descriptors_near_limit), "descriptors_near_limit");
}

TEST(findings, a_healthy_process_has_none) {
    process_snapshot p;
    p.listeners.push_back(held(tcp_row(tcp_state::listen, "0.0.0.0:8000", "", 1), 3, -1));
    p.listeners[0].kernel.send_queue = 128;
    p.connections.push_back(held(conn(tcp_state::established, 2), 4, 60000));
    p.connections.push_back(held(conn(tcp_state::last_ack, 3), 5, 60000));  // we shut down too
    p.descriptors = {6, 3, 0, {1024, 4096}};
    EXPECT_TRUE(diagnose(p, {milliseconds(0)}).empty());
}

TEST(findings, close_wait_names_every_descriptor_and_the_evidence) {
    process_snapshot p;
    for (int fd = 5; fd <= 7; ++fd) {
        auto k = conn(tcp_state::close_wait, static_cast<std::uint64_t>(fd));
        k.recv_queue = fd == 5 ? 0 : 1;  // fd 5 read the end of stream, the others did not
        k.tcp->last_ack_recv_ms = 2000;
        k.tcp->last_data_recv_ms = 2500;
        k.tcp->last_data_sent_ms = 3000;
        // fd 7's peer sent only its FIN (which takes one sequence number); the others data too.
        k.tcp->bytes_received = fd == 7 ? 1 : 101;
        p.connections.push_back(held(k, fd, 2000 + fd));
    }
    const auto fs = diagnose(p, {milliseconds(1000)});
    ASSERT_EQ(fs.size(), 1U);
    const auto& f = fs[0];
    EXPECT_EQ(f.kind, finding_kind::close_wait);
    EXPECT_EQ(f.count, 3U);
    EXPECT_EQ(f.fds, (std::vector<int>{5, 6, 7}));
    EXPECT_EQ(f.inodes, (std::vector<std::uint64_t>{5, 6, 7}));
    EXPECT_EQ(f.quiet_for, milliseconds(2005));
    EXPECT_TRUE(contains(f.summary, "3 connections in CLOSE_WAIT")) << f.summary;
    ASSERT_EQ(f.evidence.size(), 3U);
    EXPECT_TRUE(contains(f.evidence[0], "fd 5 127.0.0.1:8000 -> 127.0.0.1:45")) << f.evidence[0];
    EXPECT_TRUE(contains(f.evidence[0], "nothing from the peer for 2.0 s")) << f.evidence[0];
    EXPECT_TRUE(contains(f.evidence[0], "last data from it 2.5 s ago")) << f.evidence[0];
    EXPECT_TRUE(contains(f.evidence[0], "has read the end of stream")) << f.evidence[0];
    EXPECT_TRUE(contains(f.evidence[1], "has not read the end of stream")) << f.evidence[1];
    EXPECT_TRUE(contains(f.evidence[2], "no data from it before its FIN")) << f.evidence[2];
    EXPECT_FALSE(contains(f.evidence[2], "last data from it")) << f.evidence[2];
    EXPECT_TRUE(contains(f.advice, "close()")) << f.advice;
}

TEST(findings, min_age_hides_young_sockets_but_not_those_of_unknown_age) {
    process_snapshot p;
    p.connections.push_back(held(conn(tcp_state::close_wait, 1), 4, 300));
    EXPECT_TRUE(diagnose(p, {milliseconds(1000)}).empty());
    EXPECT_EQ(diagnose(p, {milliseconds(300)}).size(), 1U);
    p.connections[0].quiet_for.reset();
    EXPECT_EQ(diagnose(p, {milliseconds(1000)}).size(), 1U);
}

TEST(findings, unix_peers_that_finished_are_close_wait_too) {
    process_snapshot p;
    auto gone = test::unix_row(1, 0);
    gone.unix_peer_gone = true;
    gone.shutdown = shutdown_read | shutdown_write;
    gone.recv_queue = 3;
    auto half = test::unix_row(2, 20);
    half.shutdown = shutdown_read;
    auto both = test::unix_row(3, 30);  // we shut down writing too: not a leak (yet)
    both.shutdown = shutdown_read | shutdown_write;
    p.connections = {held(gone, 4, -1), held(half, 5, -1), held(both, 6, -1)};
    const auto fs = diagnose(p, {milliseconds(1000)});
    const auto* cw = only(fs, finding_kind::close_wait);
    ASSERT_NE(cw, nullptr);
    EXPECT_EQ(cw->fds, (std::vector<int>{4, 5}));
    EXPECT_TRUE(contains(cw->evidence[0], "the peer has closed its end")) << cw->evidence[0];
    EXPECT_FALSE(cw->quiet_for.has_value());
    const auto* unread = only(fs, finding_kind::unread_after_peer_eof);
    ASSERT_NE(unread, nullptr);
    EXPECT_EQ(unread->fds, (std::vector<int>{4}));
    EXPECT_TRUE(contains(unread->evidence[0], "3 B unread")) << unread->evidence[0];
}

TEST(findings, unread_bytes_after_the_peers_fin_do_not_count_the_fin) {
    process_snapshot p;
    auto a = conn(tcp_state::close_wait, 1);
    a.recv_queue = 101;  // 100 bytes and the FIN
    auto b = conn(tcp_state::close_wait, 2);
    b.recv_queue = 1;                       // just the FIN
    auto c = conn(tcp_state::last_ack, 3);  // shut down writing, never read the request
    c.recv_queue = 51;
    auto d = conn(tcp_state::established, 4);  // no FIN yet: bytes still coming is normal
    d.recv_queue = 1000;
    p.connections = {held(a, 4, 5000), held(b, 5, 5000), held(c, 6, 5000), held(d, 7, 5000)};
    const auto fs = diagnose(p, {milliseconds(0)});
    const auto* f = only(fs, finding_kind::unread_after_peer_eof);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->fds, (std::vector<int>{4, 6}));
    EXPECT_TRUE(contains(f->evidence[0], "100 B unread")) << f->evidence[0];
    EXPECT_TRUE(contains(f->evidence[1], "50 B unread after the peer's end of stream (LAST_ACK)"))
        << f->evidence[1];
    EXPECT_TRUE(contains(f->summary, "RST")) << f->summary;
    // LAST_ACK is no CLOSE_WAIT: it did shut down writing.
    EXPECT_EQ(only(fs, finding_kind::close_wait)->fds, (std::vector<int>{4, 5}));
}

TEST(findings, a_send_queue_is_stuck_only_with_a_zero_window_or_unanswered_retransmissions) {
    process_snapshot p;
    auto zero = conn(tcp_state::established, 1);
    zero.send_queue = 2'000'000;
    zero.timer = tcp_timer::zero_window_probe;
    zero.tcp->last_data_sent_ms = 4000;  // probes carry no data
    zero.tcp->probes = 3;
    auto window = conn(tcp_state::established, 2);  // no persist timer yet, but the window is 0
    window.send_queue = 10;
    window.tcp->peer_window = 0;
    window.tcp->last_data_sent_ms = 4000;
    auto lost = conn(tcp_state::established, 3);
    lost.send_queue = 100;
    lost.timer = tcp_timer::retransmit;
    lost.timer_retries = 5;
    lost.tcp->rto_us = 3'200'000;      // 5 timeouts in a row: 100 + 200 + ... + 1600 ms
    lost.tcp->last_data_sent_ms = 40;  // the last retransmission
    auto moving = conn(tcp_state::established, 4);  // queued but acknowledged as it goes
    moving.send_queue = 100;
    moving.timer = tcp_timer::retransmit;
    moving.tcp->last_data_sent_ms = 4000;
    moving.tcp->rto_us = 3'200'000;
    auto young = conn(tcp_state::established, 5);
    young.send_queue = 100;
    young.timer = tcp_timer::zero_window_probe;
    young.tcp->last_data_sent_ms = 10;
    // The peer's buffer shrank below its window: it answers every retransmission with a
    // duplicate ACK of window 0, so last_data_sent and last_ack_recv keep resetting and
    // timer_retries stays 0; the backoff (3: 200 + 400 + 800 ms) is what one look can know.
    auto shrunk = conn(tcp_state::established, 6);
    shrunk.send_queue = 500'000;
    shrunk.timer = tcp_timer::retransmit;
    shrunk.tcp->peer_window = 0;
    shrunk.tcp->backoff = 3;
    shrunk.tcp->rto_us = 1'600'000;
    shrunk.tcp->last_data_sent_ms = 300;
    shrunk.tcp->last_ack_recv_ms = 300;
    auto early = shrunk;  // the same after one timeout: 400 ms is all one look proves
    early.inode = 7;
    early.tcp->backoff = 1;
    early.tcp->rto_us = 400'000;
    p.connections = {held(zero, 4, 0),  held(window, 5, 0), held(lost, 6, 0),  held(moving, 7, 0),
                     held(young, 8, 0), held(shrunk, 9, 0), held(early, 10, 0)};
    const auto fs = diagnose(p, {milliseconds(1000)});
    ASSERT_EQ(fs.size(), 1U);
    EXPECT_EQ(fs[0].kind, finding_kind::send_queue_stuck);
    EXPECT_EQ(fs[0].fds, (std::vector<int>{4, 5, 6, 9}));
    EXPECT_EQ(fs[0].quiet_for, milliseconds(1400));
    EXPECT_TRUE(contains(fs[0].evidence[0], "2000000 B queued; the peer's receive window is zero"))
        << fs[0].evidence[0];
    EXPECT_TRUE(contains(fs[0].evidence[0], "no new data sent for 4.0 s")) << fs[0].evidence[0];
    EXPECT_TRUE(contains(fs[0].evidence[2], "5 retransmission timeouts")) << fs[0].evidence[2];
    EXPECT_TRUE(contains(fs[0].evidence[2], "nothing acknowledged for at least 3.1 s"))
        << fs[0].evidence[2];
    EXPECT_TRUE(contains(fs[0].evidence[3], "zero window and drops what comes"))
        << fs[0].evidence[3];
    EXPECT_TRUE(contains(fs[0].evidence[3], "nothing acknowledged for at least 1.4 s"))
        << fs[0].evidence[3];
    // --min-age 0: the one timeout of `early` is enough, the retransmissions of `moving` are not.
    EXPECT_EQ(diagnose(p, {milliseconds(0)})[0].fds, (std::vector<int>{4, 5, 6, 8, 9, 10}));
}

TEST(findings, fin_wait2_and_read_shut_follow_the_shutdown_bits) {
    process_snapshot p;
    auto fw2 = conn(tcp_state::fin_wait2, 1);
    fw2.shutdown = shutdown_write;
    auto rd = conn(tcp_state::established, 2);
    rd.shutdown = shutdown_read;
    rd.recv_queue = 7;
    auto peer_fin = conn(tcp_state::close_wait, 3);  // the read bit comes from the peer's FIN
    peer_fin.shutdown = shutdown_read;
    p.connections = {held(fw2, 4, 3000), held(rd, 5, 3000), held(peer_fin, 6, 3000)};
    const auto fs = diagnose(p, {milliseconds(1000)});
    const auto* f = only(fs, finding_kind::fin_wait2);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->fds, (std::vector<int>{4}));
    EXPECT_TRUE(contains(f->evidence[0], "nothing from the peer for 3.0 s")) << f->evidence[0];
    const auto* r = only(fs, finding_kind::read_shut);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->fds, (std::vector<int>{5}));
    EXPECT_TRUE(contains(r->evidence[0], "--> in ESTABLISHED, 7 B unread")) << r->evidence[0];
}

TEST(findings, sockets_left_to_the_kernel_are_counted_by_state) {
    process_snapshot p;
    auto a = conn(tcp_state::fin_wait2, 0);
    a.timer = tcp_timer::keepalive;
    a.timer_expires_ms = 42000;
    auto b = conn(tcp_state::fin_wait1, 0);
    b.send_queue = 65536;
    p.orphans = {held(a, -1, 5000), held(b, -1, 5000), held(a, -1, 5000)};
    const auto fs = diagnose(p, {milliseconds(1000)});
    ASSERT_EQ(fs.size(), 1U);
    EXPECT_EQ(fs[0].kind, finding_kind::orphaned);
    EXPECT_EQ(fs[0].count, 3U);
    EXPECT_TRUE(fs[0].fds.empty());
    EXPECT_TRUE(contains(fs[0].summary, "(FIN_WAIT1 1, FIN_WAIT2 2)")) << fs[0].summary;
    EXPECT_TRUE(contains(fs[0].evidence[0], "the kernel gives up in 42.0 s")) << fs[0].evidence[0];
    EXPECT_TRUE(contains(fs[0].evidence[1], "65536 B not yet acknowledged")) << fs[0].evidence[1];
}

TEST(findings, a_full_accept_queue_cites_the_namespaces_overflow_counter) {
    process_snapshot p;
    auto l = tcp_row(tcp_state::listen, "127.0.0.1:8000", "", 1);
    l.recv_queue = 129;
    l.send_queue = 128;
    auto ok = tcp_row(tcp_state::listen, "127.0.0.1:8001", "", 2);
    ok.recv_queue = 127;
    ok.send_queue = 128;
    p.listeners = {held(l, 3, -1), held(ok, 4, -1)};
    p.counters.listen_overflows = 17;
    p.counters.listen_drops = 18;
    const auto fs = diagnose(p, {milliseconds(1000)});
    ASSERT_EQ(fs.size(), 1U);
    EXPECT_EQ(fs[0].kind, finding_kind::accept_queue_full);
    EXPECT_EQ(fs[0].fds, (std::vector<int>{3}));
    EXPECT_TRUE(contains(fs[0].evidence[0], "129 connections wait for accept(), backlog 128"))
        << fs[0].evidence[0];
    EXPECT_TRUE(contains(fs[0].summary, "17 ListenOverflows and 18 ListenDrops")) << fs[0].summary;
}

TEST(findings, descriptors_near_the_limit) {
    process_snapshot p;
    p.descriptors = {922, 900, 2, {1024, 4096}};
    p.connections.push_back(held(conn(tcp_state::close_wait, 1), 4, 5000));
    auto fs = diagnose(p, {milliseconds(0)});
    const auto* f = only(fs, finding_kind::descriptors_near_limit);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->count, 922U);
    EXPECT_TRUE(contains(f->summary, "922 of 1024 descriptors in use")) << f->summary;
    EXPECT_TRUE(contains(f->evidence[0], "hard limit 4096")) << f->evidence[0];
    EXPECT_TRUE(contains(f->evidence[1],
                         "900 of the descriptors are sockets: 1 connections (1 "
                         "half-closed by the peer)"))
        << f->evidence[1];
    EXPECT_EQ(fs.back().kind, finding_kind::descriptors_near_limit);  // in kind order
    p.descriptors.open = 921;
    EXPECT_EQ(only(diagnose(p, {milliseconds(0)}), finding_kind::descriptors_near_limit), nullptr);
    p.descriptors = {100000, 0, 0, {std::nullopt, std::nullopt}};
    EXPECT_EQ(only(diagnose(p, {milliseconds(0)}), finding_kind::descriptors_near_limit), nullptr);
}

TEST(findings, evidence_is_capped_and_says_how_many_more) {
    process_snapshot p;
    for (int fd = 10; fd < 35; ++fd) {
        p.connections.push_back(
            held(conn(tcp_state::close_wait, static_cast<std::uint64_t>(fd)), fd, 5000));
    }
    const auto fs = diagnose(p, {milliseconds(0)});
    ASSERT_EQ(fs.size(), 1U);
    EXPECT_EQ(fs[0].count, 25U);
    EXPECT_EQ(fs[0].fds.size(), 25U);
    ASSERT_EQ(fs[0].evidence.size(), 11U);
    EXPECT_EQ(fs[0].evidence.back(), "... and 15 more");
}

}  // namespace
}  // namespace orderly::diag
