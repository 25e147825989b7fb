#include "orderly/net/connect.hpp"

#include <gtest/gtest.h>

#include "orderly/core/errc.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(connect_helper, connects_by_name) {
    auto l = orderly::listen("127.0.0.1:0");
    ASSERT_TRUE(l) << l.error().message();
    const std::string where = "localhost:" + std::to_string(l->local_endpoint().port());
    auto c = orderly::connect(where, 5s);
    ASSERT_TRUE(c) << c.error().message();
    auto s = l->accept(deadline::after(5s));
    EXPECT_TRUE(s);
}

TEST(connect_helper, refused_message_names_target) {
    endpoint free_port;
    {
        auto l = orderly::listen("127.0.0.1:0");
        ASSERT_TRUE(l);
        free_port = l->local_endpoint();
    }
    auto c = orderly::connect(free_port.to_string(), 5s);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, std::errc::connection_refused);
    EXPECT_NE(c.error().message().find(free_port.to_string()), std::string::npos)
        << c.error().message();
}

TEST(connect_helper, malformed_and_unresolvable) {
    auto bad = orderly::connect("127.0.0.1:notaport", 1s);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("notaport"), std::string::npos) << bad.error().message();
    auto none = orderly::connect("nosuch.invalid:80", 5s);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, errc::resolve);
    EXPECT_NE(none.error().message().find("nosuch.invalid"), std::string::npos);
}

TEST(connect_helper, listen_dual_stack_accepts_ipv4_clients) {
    if (!test::ipv6_available()) GTEST_SKIP() << "IPv6 loopback is not available here";
    listen_options opts;
    opts.v6_only = false;
    auto l = orderly::listen("[::]:0", opts);
    ASSERT_TRUE(l) << l.error().message();
    const auto port = l->local_endpoint().port();
    auto c4 = orderly::connect("127.0.0.1:" + std::to_string(port), 5s);
    ASSERT_TRUE(c4) << c4.error().message();
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->peer_endpoint()->host(), "::ffff:127.0.0.1");
}

TEST(connect_helper, listen_on_any_address) {
    // "*:0" and ":0" bind the system's first passive address (0.0.0.0 or ::); "0.0.0.0:0" is
    // IPv4 and must take a client on 127.0.0.1.
    for (const char* where : {"*:0", ":0", "0.0.0.0:0"}) {
        auto l = orderly::listen(where);
        ASSERT_TRUE(l) << where << ": " << l.error().message();
        EXPECT_NE(l->local_endpoint().port(), 0) << where;
        EXPECT_TRUE(l->local_endpoint().host() == "0.0.0.0" || l->local_endpoint().host() == "::")
            << where << " bound " << l->local_endpoint().to_string();
    }
    auto l = orderly::listen("0.0.0.0:0");
    ASSERT_TRUE(l);
    auto c = orderly::connect("127.0.0.1:" + std::to_string(l->local_endpoint().port()), 5s);
    EXPECT_TRUE(c) << c.error().message();
}

TEST(connect_helper, unix_path_text) {
    const std::string path = test::temp_socket_path();
    auto l = orderly::listen("unix:" + path);
    ASSERT_TRUE(l) << l.error().message();
    auto c = orderly::connect("unix:" + path, 5s);
    ASSERT_TRUE(c) << c.error().message();
    auto s = l->accept(deadline::after(5s));
    EXPECT_TRUE(s);
}

}  // namespace
}  // namespace orderly
