#include "orderly/net/listener.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orderly/core/errc.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(listener, port_zero_binds_an_ephemeral_port) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l) << l.error().message();
    EXPECT_NE(l->local_endpoint().port(), 0);
    EXPECT_EQ(l->local_endpoint().host(), "127.0.0.1");
    EXPECT_TRUE(::fcntl(l->native_handle(), F_GETFD) & FD_CLOEXEC);
}

TEST(listener, accept_times_out) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    const auto t0 = clock::now();
    auto s = l->accept(deadline::after(100ms));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), errc::timed_out);
    EXPECT_LT(clock::now() - t0, 1s);
}

TEST(listener, accepts_a_connection) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    auto c = stream_socket::connect(l->local_endpoint(), 5s);
    ASSERT_TRUE(c);
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s);
    EXPECT_EQ(*s->peer_endpoint(), *c->local_endpoint());
}

TEST(listener, address_in_use_names_the_endpoint) {
    listen_options no_reuse;
    no_reuse.reuse_address = false;
    auto a = listener::listen(endpoint::ipv4_loopback(0), no_reuse);
    ASSERT_TRUE(a);
    auto b = listener::listen(a->local_endpoint(), no_reuse);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, std::errc::address_in_use);
    EXPECT_NE(b.error().message().find(a->local_endpoint().to_string()), std::string::npos)
        << b.error().message();
    EXPECT_NE(b.error().message().find("port 0"), std::string::npos) << b.error().message();
}

TEST(listener, unix_path_created_and_removed) {
    const std::string path = test::temp_socket_path();
    {
        auto ep = endpoint::unix_path(path);
        ASSERT_TRUE(ep);
        auto l = listener::listen(*ep);
        ASSERT_TRUE(l) << l.error().message();
        struct stat st {};
        ASSERT_EQ(::lstat(path.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        auto c = stream_socket::connect(*ep, 5s);
        ASSERT_TRUE(c) << c.error().message();
        auto s = l->accept(deadline::after(5s));
        ASSERT_TRUE(s);
    }
    struct stat st {};
    EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

TEST(listener, stale_unix_socket_file_replaced_only_on_request) {
    const std::string path = test::temp_socket_path();
    auto ep = endpoint::unix_path(path);
    ASSERT_TRUE(ep);
    {
        auto l = listener::listen(*ep);
        ASSERT_TRUE(l);
        unique_fd keep = l->release();  // simulate a crash: the file stays behind
    }
    auto again = listener::listen(*ep);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, std::errc::address_in_use);
    listen_options replace;
    replace.replace_unix_socket_file = true;
    auto l = listener::listen(*ep, replace);
    EXPECT_TRUE(l) << l.error().message();
}

TEST(listener, abstract_unix_socket) {
    auto ep = endpoint::unix_abstract("orderly-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(ep);
    auto l = listener::listen(*ep);
    ASSERT_TRUE(l) << l.error().message();
    auto c = stream_socket::connect(*ep, 5s);
    ASSERT_TRUE(c);
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s);
}

TEST(listener, accept_after_close_is_not_open) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    l->close();
    EXPECT_FALSE(l->is_open());
    EXPECT_EQ(l->accept(deadline::after(10ms)).error(), errc::not_open);
}

}  // namespace
}  // namespace orderly
