#include "orderly/diag/snapshot.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "diag_test_util.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/diag/json.hpp"
#include "orderly/net/connect.hpp"
#include "support/loopback.hpp"
#include "support/netns.hpp"

namespace orderly::diag {
namespace {

using std::chrono::milliseconds;
using test::eventually;
using test::find_fd;
using test::find_kind;
using test::self_snapshot;

bool lists_fd(const finding* f, int fd) {
    return f != nullptr && std::find(f->fds.begin(), f->fds.end(), fd) != f->fds.end();
}

// Takes snapshots until `ok` holds for one (bounded), and returns the last.
template <class F>
process_snapshot snapshot_until(F&& ok, milliseconds min_age = milliseconds(0)) {
    process_snapshot s;
    (void)eventually([&] {
        s = self_snapshot(min_age);
        return ok(s);
    });
    return s;
}

TEST(snapshot, finds_a_close_wait_leak_in_this_process) {
    auto pair = orderly::test::make_pair();
    ASSERT_TRUE(pair.client.shutdown(shut::write).has_value());
    const int fd = pair.server.native_handle();
    const auto s = snapshot_until([&](const process_snapshot& x) {
        return lists_fd(find_kind(x, finding_kind::close_wait), fd) &&
               lists_fd(find_kind(x, finding_kind::fin_wait2), pair.client.native_handle());
    });
    const auto* f = find_kind(s, finding_kind::close_wait);
    ASSERT_TRUE(lists_fd(f, fd));
    EXPECT_EQ(s.pid, ::getpid());
    const auto* conn = find_fd(s, fd);
    ASSERT_NE(conn, nullptr);
    EXPECT_EQ(conn->state, socket_state::half_closed_by_peer);
    EXPECT_EQ(conn->kernel.state, tcp_state::close_wait);
    EXPECT_EQ(conn->kernel.inode, test::inode_of(fd));
    EXPECT_EQ(conn->kernel.local, pair.server.local_endpoint().value());
    EXPECT_TRUE(conn->quiet_for.has_value());
    // Our side of it waits for the server's FIN.
    EXPECT_TRUE(lists_fd(find_kind(s, finding_kind::fin_wait2), pair.client.native_handle()));
    // The JSON names this process first.
    EXPECT_EQ(to_json(s).rfind("{\"pid\":" + std::to_string(::getpid()) + ",", 0), 0U);

    // A minimum age no socket of this test can reach hides the finding...
    const auto quiet = self_snapshot(std::chrono::minutes(10));
    EXPECT_FALSE(lists_fd(find_kind(quiet, finding_kind::close_wait), fd));
    // ...and closing ends it.
    (void)pair.server.close();
    const auto after = snapshot_until([&](const process_snapshot& x) {
        return find_kind(x, finding_kind::close_wait) == nullptr ||
               !lists_fd(find_kind(x, finding_kind::close_wait), fd);
    });
    EXPECT_FALSE(lists_fd(find_kind(after, finding_kind::close_wait), fd));
}

TEST(snapshot, unread_bytes_after_the_peers_fin) {
    auto pair = orderly::test::make_pair();
    ASSERT_EQ(test::send_raw(pair.client.native_handle(), std::string(100, 'x')), 100);
    ASSERT_TRUE(pair.client.shutdown(shut::write).has_value());
    const int fd = pair.server.native_handle();
    const auto s = snapshot_until([&](const process_snapshot& x) {
        return lists_fd(find_kind(x, finding_kind::unread_after_peer_eof), fd);
    });
    const auto* f = find_kind(s, finding_kind::unread_after_peer_eof);
    ASSERT_TRUE(lists_fd(f, fd));
    EXPECT_NE(f->evidence[0].find("100 B unread"), std::string::npos) << f->evidence[0];
}

TEST(snapshot, unix_socket_whose_peer_closed) {
    auto pair = orderly::test::make_pair(orderly::test::transport::unix_path);
    (void)pair.client.close();
    const int fd = pair.server.native_handle();
    // Unix sockets have no TCP_INFO: their age is unknown, so even a large minimum age keeps them.
    const auto s = self_snapshot(std::chrono::minutes(10));
    const auto* f = find_kind(s, finding_kind::close_wait);
    ASSERT_TRUE(lists_fd(f, fd));
    EXPECT_NE(f->evidence[0].find("the peer has closed its end"), std::string::npos);
    EXPECT_EQ(find_fd(s, fd)->kernel.kind, socket_kind::unix_stream);
}

TEST(snapshot, shutdown_read_is_reported) {
    auto pair = orderly::test::make_pair();
    ASSERT_TRUE(pair.server.shutdown(shut::read).has_value());
    const auto s = self_snapshot();
    EXPECT_TRUE(lists_fd(find_kind(s, finding_kind::read_shut), pair.server.native_handle()));
    EXPECT_EQ(find_fd(s, pair.server.native_handle())->kernel.shutdown,
              std::optional<std::uint8_t>(shutdown_read));
}

struct raw_pair {
    unique_fd listener;
    unique_fd client;
    unique_fd server;
};

// A loopback pair whose client has a tiny receive buffer, made before connect() so that the
// window it announces stays small.
raw_pair small_window_pair() {
    raw_pair p;
    p.listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const endpoint lo = endpoint::ipv4_loopback(0);
    EXPECT_EQ(::bind(p.listener.get(), lo.data(), lo.size()), 0);
    EXPECT_EQ(::listen(p.listener.get(), 8), 0);
    const auto at = local_endpoint_of(p.listener.get()).value();
    p.client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int small = 4096;
    EXPECT_EQ(::setsockopt(p.client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    EXPECT_EQ(::connect(p.client.get(), at.data(), at.size()), 0);
    p.server.reset(::accept4(p.listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    EXPECT_TRUE(p.server.valid());
    return p;
}

TEST(snapshot, a_peer_that_stops_reading_leaves_a_stuck_send_queue) {
    auto p = small_window_pair();
    const std::string chunk(64 << 10, 'y');
    for (int i = 0; i < 1000; ++i) {  // until the kernel takes no more
        if (::send(p.server.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    }
    const int fd = p.server.get();
    const auto s = snapshot_until([&](const process_snapshot& x) {
        return lists_fd(find_kind(x, finding_kind::send_queue_stuck), fd);
    });
    const auto* f = find_kind(s, finding_kind::send_queue_stuck);
    ASSERT_TRUE(lists_fd(f, fd)) << "no zero window seen within 10 s";
    EXPECT_NE(f->evidence[0].find("receive window is zero"), std::string::npos) << f->evidence[0];
    const auto* conn = find_fd(s, fd);
    EXPECT_GT(conn->kernel.send_queue, 0U);
    EXPECT_EQ(conn->kernel.timer, tcp_timer::zero_window_probe);
}

TEST(snapshot, a_socket_closed_before_the_peer_finished_is_left_to_the_kernel) {
    auto l = orderly::test::make_listener();
    auto client = orderly::connect(l.local_endpoint().to_string(), std::chrono::seconds(5)).value();
    auto server = l.accept().value();
    const auto peer = server.peer_endpoint().value();
    (void)server.close();  // the client neither reads the FIN nor closes: FIN_WAIT2 for ever
    const auto s = snapshot_until([&](const process_snapshot& x) {
        return std::any_of(x.orphans.begin(), x.orphans.end(), [&](const socket_info& o) {
            return o.kernel.peer == peer && o.kernel.state == tcp_state::fin_wait2;
        });
    });
    const auto* f = find_kind(s, finding_kind::orphaned);
    ASSERT_NE(f, nullptr);
    EXPECT_TRUE(f->fds.empty());
    EXPECT_NE(f->summary.find("FIN_WAIT2"), std::string::npos) << f->summary;
    // The client side is the CLOSE_WAIT the orphan waits for.
    EXPECT_TRUE(lists_fd(find_kind(s, finding_kind::close_wait), client.native_handle()));
}

TEST(snapshot, a_listener_that_does_not_accept_fills_its_queue) {
    unique_fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const endpoint lo = endpoint::ipv4_loopback(0);
    ASSERT_EQ(::bind(l.get(), lo.data(), lo.size()), 0);
    ASSERT_EQ(::listen(l.get(), 1), 0);
    const auto at = local_endpoint_of(l.get()).value();
    // Linux queues backlog + 1 connections; both of these complete their handshake.
    std::vector<unique_fd> clients;
    for (int i = 0; i < 2; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::connect(clients.back().get(), at.data(), at.size()), 0);
    }
    const auto s = snapshot_until([&](const process_snapshot& x) {
        return lists_fd(find_kind(x, finding_kind::accept_queue_full), l.get());
    });
    const auto* f = find_kind(s, finding_kind::accept_queue_full);
    ASSERT_TRUE(lists_fd(f, l.get()));
    EXPECT_NE(f->evidence[0].find("2 connections wait for accept(), backlog 1"), std::string::npos)
        << f->evidence[0];
    EXPECT_NE(f->summary.find("ListenOverflows"), std::string::npos) << f->summary;
}

TEST(snapshot, a_missing_process_is_an_error_naming_it) {
    std::ifstream max_file("/proc/sys/kernel/pid_max");
    int pid_max = 0;
    max_file >> pid_max;
    auto s = snapshot(pid_max + 1);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, errno_code(ESRCH));
    EXPECT_NE(s.error().message().find(std::to_string(pid_max + 1)), std::string::npos);
}

TEST(snapshot, all_processes_include_this_one) {
    auto pair = orderly::test::make_pair();
    auto all = snapshot_all({milliseconds(0)});
    ASSERT_TRUE(all.has_value()) << all.error().message();
    const auto it = std::find_if(all->processes.begin(), all->processes.end(),
                                 [](const process_snapshot& p) { return p.pid == ::getpid(); });
    ASSERT_NE(it, all->processes.end());
    EXPECT_NE(find_fd(*it, pair.client.native_handle()), nullptr);
    EXPECT_NE(find_fd(*it, pair.server.native_handle()), nullptr);
    EXPECT_TRUE(std::is_sorted(all->processes.begin(), all->processes.end(),
                               [](const auto& a, const auto& b) { return a.pid < b.pid; }));
}

TEST(snapshot, a_process_in_another_network_namespace_is_read_there) {
    orderly::test::netns_pair net;
    if (net.not_permitted()) GTEST_SKIP() << net.skip_reason();
    ASSERT_TRUE(net.ready()) << net.error();
    const auto at = net.address(orderly::test::side::a);
    const std::string script = "import socket, time\ns = socket.socket()\ns.bind(('" + at.host() +
                               "', 0))\ns.listen()\ntime.sleep(20)\n";
    orderly::test::child_process child(
        net.exec_argv(orderly::test::side::a, {"python3", "-c", script}), {});
    ASSERT_TRUE(child.started()) << child.error();
    process_snapshot s;
    int pid = 0;
    // `ip netns exec` execs python3 in place, so the child's PID is the listener's.
    const bool seen = eventually([&] {
        for (const int candidate : list_processes()) {
            auto p = read_process(candidate);
            if (!p || p->command.find("time.sleep(20)") == std::string::npos) continue;
            auto snap = snapshot(candidate);
            if (snap && !snap->listeners.empty()) {
                s = std::move(*snap);
                pid = candidate;
                return true;
            }
        }
        return false;
    });
    (void)child.wait(std::chrono::milliseconds(1));
    ASSERT_TRUE(seen);
    EXPECT_GT(pid, 0);
    ASSERT_EQ(s.listeners.size(), 1U);
    EXPECT_EQ(s.listeners[0].kernel.local.host(), at.host());
    EXPECT_EQ(s.descriptors.other_sockets, 0U);
    EXPECT_NE(std::find_if(s.notes.begin(), s.notes.end(),
                           [](const std::string& n) {
                               return n.find("another network namespace") != std::string::npos;
                           }),
              s.notes.end());
}

}  // namespace
}  // namespace orderly::diag
