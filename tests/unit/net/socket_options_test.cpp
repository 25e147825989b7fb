#include "orderly/net/socket_options.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "orderly/core/unique_fd.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {
namespace {

using std::chrono::seconds;

unique_fd tcp_socket(int domain = AF_INET) {
    return unique_fd(::socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

int raw_int(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    EXPECT_EQ(::getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

TEST(socket_options, nodelay) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    ASSERT_TRUE(get_nodelay(s.get()).has_value());
    EXPECT_FALSE(*get_nodelay(s.get()));
    ASSERT_TRUE(set_nodelay(s.get(), true).has_value());
    EXPECT_TRUE(*get_nodelay(s.get()));
    EXPECT_EQ(raw_int(s.get(), IPPROTO_TCP, TCP_NODELAY), 1);
    ASSERT_TRUE(set_nodelay(s.get(), false).has_value());
    EXPECT_FALSE(*get_nodelay(s.get()));
}

TEST(socket_options, keepalive) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    EXPECT_FALSE(*get_keepalive(s.get()));
    ASSERT_TRUE(set_keepalive(s.get(), true).has_value());
    EXPECT_TRUE(*get_keepalive(s.get()));
    ASSERT_TRUE(set_keepalive(s.get(), false).has_value());
    EXPECT_FALSE(*get_keepalive(s.get()));
}

TEST(socket_options, keepalive_timing) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    auto r = set_keepalive(s.get(), seconds{30}, seconds{5}, 4);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(*get_keepalive(s.get()));
    EXPECT_EQ(raw_int(s.get(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
    EXPECT_EQ(raw_int(s.get(), IPPROTO_TCP, TCP_KEEPINTVL), 5);
    EXPECT_EQ(raw_int(s.get(), IPPROTO_TCP, TCP_KEEPCNT), 4);

    // Out-of-range values are rejected before anything is changed.
    for (auto bad : {set_keepalive(s.get(), seconds{0}, seconds{5}, 4),
                     set_keepalive(s.get(), seconds{30}, seconds{-1}, 4),
                     set_keepalive(s.get(), seconds{30}, seconds{5}, 0),
                     set_keepalive(s.get(), seconds{1LL << 40}, seconds{5}, 4)}) {
        ASSERT_FALSE(bad.has_value());
        EXPECT_EQ(bad.error(), std::errc::invalid_argument);
    }
    EXPECT_EQ(raw_int(s.get(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
}

TEST(socket_options, linger_on_off_zero) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    auto initial = get_linger(s.get());
    ASSERT_TRUE(initial.has_value());
    EXPECT_FALSE(initial->has_value());

    ASSERT_TRUE(set_linger(s.get(), seconds{5}).has_value());
    auto on = get_linger(s.get());
    ASSERT_TRUE(on.has_value());
    ASSERT_TRUE(on->has_value());
    EXPECT_EQ(**on, seconds{5});

    // Zero: the abortive close that sends RST.
    ASSERT_TRUE(set_linger(s.get(), seconds{0}).has_value());
    auto zero = get_linger(s.get());
    ASSERT_TRUE(zero.has_value());
    ASSERT_TRUE(zero->has_value());
    EXPECT_EQ(**zero, seconds{0});
    ::linger raw{};
    socklen_t len = sizeof raw;
    ASSERT_EQ(::getsockopt(s.get(), SOL_SOCKET, SO_LINGER, &raw, &len), 0);
    EXPECT_EQ(raw.l_onoff, 1);
    EXPECT_EQ(raw.l_linger, 0);

    ASSERT_TRUE(set_linger(s.get(), std::nullopt).has_value());
    auto off = get_linger(s.get());
    ASSERT_TRUE(off.has_value());
    EXPECT_FALSE(off->has_value());

    auto negative = set_linger(s.get(), seconds{-1});
    ASSERT_FALSE(negative.has_value());
    EXPECT_EQ(negative.error(), std::errc::invalid_argument);
}

TEST(socket_options, buffer_sizes) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    ASSERT_TRUE(set_send_buffer_size(s.get(), 64 * 1024).has_value());
    auto snd = get_send_buffer_size(s.get());
    ASSERT_TRUE(snd.has_value());
    // Linux doubles the request for its bookkeeping (and caps it at wmem_max).
    EXPECT_GE(*snd, 4096);
    EXPECT_EQ(*snd, raw_int(s.get(), SOL_SOCKET, SO_SNDBUF));

    ASSERT_TRUE(set_recv_buffer_size(s.get(), 32 * 1024).has_value());
    auto rcv = get_recv_buffer_size(s.get());
    ASSERT_TRUE(rcv.has_value());
    EXPECT_GE(*rcv, 4096);
    EXPECT_EQ(*rcv, raw_int(s.get(), SOL_SOCKET, SO_RCVBUF));

    // A smaller request gives a smaller buffer: the value really reached the kernel.
    ASSERT_TRUE(set_recv_buffer_size(s.get(), 8 * 1024).has_value());
    EXPECT_LT(*get_recv_buffer_size(s.get()), *rcv);
}

TEST(socket_options, reuse_address_and_port) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    EXPECT_FALSE(*get_reuse_address(s.get()));
    ASSERT_TRUE(set_reuse_address(s.get(), true).has_value());
    EXPECT_TRUE(*get_reuse_address(s.get()));
    ASSERT_TRUE(set_reuse_address(s.get(), false).has_value());
    EXPECT_FALSE(*get_reuse_address(s.get()));

    EXPECT_FALSE(*get_reuse_port(s.get()));
    ASSERT_TRUE(set_reuse_port(s.get(), true).has_value());
    EXPECT_TRUE(*get_reuse_port(s.get()));
    ASSERT_TRUE(set_reuse_port(s.get(), false).has_value());
    EXPECT_FALSE(*get_reuse_port(s.get()));
}

TEST(socket_options, v6_only) {
    unique_fd s = tcp_socket(AF_INET6);
    if (!s.valid() && errno == EAFNOSUPPORT) GTEST_SKIP() << "no IPv6";
    ASSERT_TRUE(s.valid());
    ASSERT_TRUE(set_v6_only(s.get(), true).has_value());
    EXPECT_TRUE(*get_v6_only(s.get()));
    ASSERT_TRUE(set_v6_only(s.get(), false).has_value());
    EXPECT_FALSE(*get_v6_only(s.get()));

    unique_fd v4 = tcp_socket(AF_INET);
    ASSERT_TRUE(v4.valid());
    EXPECT_FALSE(get_v6_only(v4.get()).has_value());
}

TEST(socket_options, take_socket_error_reports_and_clears) {
    unique_fd s = tcp_socket();
    ASSERT_TRUE(s.valid());
    auto none = take_socket_error(s.get());
    ASSERT_TRUE(none.has_value());
    EXPECT_EQ(*none, 0);

    // A loopback port that is bound but not listening refuses connections.
    unique_fd closed = tcp_socket();
    ASSERT_TRUE(closed.valid());
    const endpoint lo = endpoint::ipv4_loopback(0);
    ASSERT_EQ(::bind(closed.get(), lo.data(), lo.size()), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ASSERT_EQ(::getsockname(closed.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    auto target = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    ASSERT_TRUE(target.has_value());

    ASSERT_EQ(::fcntl(s.get(), F_SETFL, ::fcntl(s.get(), F_GETFL) | O_NONBLOCK), 0);
    const int rc = ::connect(s.get(), target->data(), target->size());
    if (rc != 0 && errno == EINPROGRESS) {
        pollfd p{s.get(), POLLOUT, 0};
        ASSERT_EQ(::poll(&p, 1, 5000), 1);
        auto err = take_socket_error(s.get());
        ASSERT_TRUE(err.has_value());
        EXPECT_EQ(*err, ECONNREFUSED);
    } else {
        // Loopback may refuse synchronously; then the error was returned, not queued.
        ASSERT_EQ(rc, -1);
        EXPECT_EQ(errno, ECONNREFUSED);
    }
    auto cleared = take_socket_error(s.get());
    ASSERT_TRUE(cleared.has_value());
    EXPECT_EQ(*cleared, 0);
}

TEST(socket_options, errors_are_the_call_errno) {
    auto bad_fd = set_nodelay(-1, true);
    ASSERT_FALSE(bad_fd.has_value());
    EXPECT_EQ(bad_fd.error(), std::errc::bad_file_descriptor);
    EXPECT_FALSE(get_linger(-1).has_value());
    EXPECT_FALSE(take_socket_error(-1).has_value());

    // TCP options make no sense on a Unix-domain socket.
    unique_fd u(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(u.valid());
    auto not_tcp = set_nodelay(u.get(), true);
    ASSERT_FALSE(not_tcp.has_value());
    EXPECT_EQ(not_tcp.error().category(), std::system_category());
    EXPECT_FALSE(get_nodelay(u.get()).has_value());
    // Generic socket options still work there.
    ASSERT_TRUE(set_send_buffer_size(u.get(), 16 * 1024).has_value());
}

}  // namespace
}  // namespace orderly
