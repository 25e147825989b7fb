#include "orderly/net/tcp_info.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "orderly/core/unique_fd.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {
namespace {

// A connected loopback TCP pair built from raw syscalls (the socket classes are tested elsewhere).
struct tcp_pair {
    unique_fd client;
    unique_fd server;
};

tcp_pair loopback_pair() {
    tcp_pair p;
    unique_fd lst(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(lst.valid());
    const endpoint lo = endpoint::ipv4_loopback(0);
    EXPECT_EQ(::bind(lst.get(), lo.data(), lo.size()), 0);
    EXPECT_EQ(::listen(lst.get(), 1), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    EXPECT_EQ(::getsockname(lst.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    p.client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(p.client.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
    p.server.reset(::accept4(lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(p.server.valid());
    return p;
}

// Polls `read` until it returns true or two seconds pass: loopback delivery is asynchronous
// (softirq), so the receiving side may lag the sender by a moment.
template <class F>
bool eventually(F&& read) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
        if (read()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return read();
}

TEST(tcp_info, state_names) {
    EXPECT_EQ(to_string(tcp_state::established), "ESTABLISHED");
    EXPECT_EQ(to_string(tcp_state::fin_wait1), "FIN_WAIT1");
    EXPECT_EQ(to_string(tcp_state::fin_wait2), "FIN_WAIT2");
    EXPECT_EQ(to_string(tcp_state::close_wait), "CLOSE_WAIT");
    EXPECT_EQ(to_string(tcp_state::time_wait), "TIME_WAIT");
    EXPECT_EQ(to_string(tcp_state::listen), "LISTEN");
    EXPECT_EQ(to_string(tcp_state::new_syn_recv), "NEW_SYN_RECV");
    EXPECT_EQ(to_string(tcp_state::unknown), "UNKNOWN");
    EXPECT_EQ(to_string(static_cast<tcp_state>(200)), "UNKNOWN");
}

TEST(tcp_info, established_and_queues) {
    tcp_pair p = loopback_pair();
    ASSERT_TRUE(p.client.valid() && p.server.valid());

    auto c = read_tcp_info(p.client.get());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    EXPECT_EQ(c->state, tcp_state::established);
    EXPECT_GT(c->snd_cwnd, 0U);
    EXPECT_EQ(c->recv_queue_bytes, 0U);

    const std::string data(1000, 'x');
    ASSERT_EQ(::send(p.client.get(), data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));

    tcp_info_snapshot s;
    EXPECT_TRUE(eventually([&] {
        auto r = read_tcp_info(p.server.get());
        if (r) s = *r;
        return r && s.recv_queue_bytes == data.size();
    })) << "recv_queue_bytes "
        << s.recv_queue_bytes;
    EXPECT_EQ(s.state, tcp_state::established);
    EXPECT_EQ(s.bytes_received, data.size());

    auto q = read_queue_sizes(p.server.get());
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->unread, data.size());

    // Once acknowledged, nothing is owed by the sender.
    EXPECT_TRUE(eventually([&] {
        auto r = read_tcp_info(p.client.get());
        return r && r->send_queue_bytes == 0 && r->bytes_acked >= data.size();
    }));

    // Reading drains the receive queue.
    char buf[2000];
    ASSERT_EQ(::recv(p.server.get(), buf, sizeof buf, 0), static_cast<ssize_t>(data.size()));
    EXPECT_EQ(read_tcp_info(p.server.get())->recv_queue_bytes, 0U);
}

TEST(tcp_info, half_close_states) {
    tcp_pair p = loopback_pair();
    ASSERT_TRUE(p.client.valid() && p.server.valid());
    ASSERT_EQ(::shutdown(p.client.get(), SHUT_WR), 0);

    tcp_state server_state = tcp_state::unknown;
    EXPECT_TRUE(eventually([&] {
        auto r = read_tcp_info(p.server.get());
        if (r) server_state = r->state;
        return server_state == tcp_state::close_wait;
    })) << to_string(server_state);

    auto c = read_tcp_info(p.client.get());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->state == tcp_state::fin_wait1 || c->state == tcp_state::fin_wait2)
        << to_string(c->state);

    // Half-closed, not over: the server can still send and the client still reads.
    ASSERT_EQ(::send(p.server.get(), "ok", 2, MSG_NOSIGNAL), 2);
    char buf[4];
    pollfd pfd{p.client.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 2000), 1);
    EXPECT_EQ(::recv(p.client.get(), buf, sizeof buf, 0), 2);
}

TEST(tcp_info, listening_socket) {
    unique_fd lst(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(lst.valid());
    const endpoint lo = endpoint::ipv4_loopback(0);
    ASSERT_EQ(::bind(lst.get(), lo.data(), lo.size()), 0);
    ASSERT_EQ(::listen(lst.get(), 1), 0);
    auto r = read_tcp_info(lst.get());
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->state, tcp_state::listen);
}

TEST(tcp_info, unix_socket_has_queues_but_no_tcp_info) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    unique_fd a(fds[0]);
    unique_fd b(fds[1]);
    EXPECT_FALSE(read_tcp_info(a.get()).has_value());

    ASSERT_EQ(::send(a.get(), "hello", 5, MSG_NOSIGNAL), 5);
    auto qb = read_queue_sizes(b.get());
    ASSERT_TRUE(qb.has_value()) << qb.error().message();
    EXPECT_EQ(qb->unread, 5U);
    auto qa = read_queue_sizes(a.get());
    ASSERT_TRUE(qa.has_value());
    // For Unix sockets SIOCOUTQ counts the kernel memory held by unread sends, overhead included.
    EXPECT_GE(qa->unsent_or_unacked, 5U);

    EXPECT_FALSE(read_queue_sizes(-1).has_value());
}

}  // namespace
}  // namespace orderly
