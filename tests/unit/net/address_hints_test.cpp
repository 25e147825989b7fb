// Messages for likely typos in addresses (issue 17): a URL scheme, a signed port, a malformed
// dotted IPv4 address (no DNS lookup), and what is in the way of a Unix path.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "orderly/core/errc.hpp"
#include "orderly/net/connect.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/resolve.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(address_hints, scheme_is_named_and_the_fix_given) {
    for (const char* text : {"tcp://127.0.0.1:80", "http://127.0.0.1:80/index.html"}) {
        auto e = endpoint::parse(text);
        ASSERT_FALSE(e) << text;
        EXPECT_EQ(e.error().code, make_error_code(errc::address_parse));
        EXPECT_TRUE(contains(e.error().detail, "URL scheme")) << e.error().detail;
        EXPECT_TRUE(contains(e.error().detail, "write 127.0.0.1:80 ")) << e.error().detail;
        auto hp = split_host_port(text);
        ASSERT_FALSE(hp);
        EXPECT_TRUE(contains(hp.error().detail, "URL scheme")) << hp.error().detail;
    }
    // Not a scheme: an IPv6 typo keeps its own message.
    auto v6 = endpoint::parse("::1:80");
    ASSERT_FALSE(v6);
    EXPECT_TRUE(contains(v6.error().detail, "brackets")) << v6.error().detail;
}

TEST(address_hints, signed_port_is_named) {
    for (const char* text : {"127.0.0.1:-1", "localhost:+80", "[::1]:-5"}) {
        auto hp = split_host_port(text);
        ASSERT_FALSE(hp) << text;
        EXPECT_EQ(hp.error().code, make_error_code(errc::address_parse));
        EXPECT_TRUE(contains(hp.error().detail, "port '")) << hp.error().detail;
        EXPECT_TRUE(contains(hp.error().detail, "0-65535")) << hp.error().detail;
        auto r = resolve(text);
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.error().code, make_error_code(errc::address_parse)) << r.error().detail;
        EXPECT_FALSE(contains(r.error().detail, "Servname")) << r.error().detail;
    }
    // A service name is still a port.
    EXPECT_TRUE(split_host_port("localhost:http"));
}

TEST(address_hints, malformed_dotted_ipv4_is_a_parse_error_not_a_lookup) {
    for (const char* text : {"999.1.1.1:80", "1.2.3:80", "127.1:80", "1.2.3.4.5:80"}) {
        auto hp = split_host_port(text);
        ASSERT_FALSE(hp) << text;
        EXPECT_TRUE(contains(hp.error().detail, "not a valid IPv4 address")) << hp.error().detail;
        auto r = resolve(text);
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.error().code, make_error_code(errc::address_parse)) << r.error().detail;
        orderly::connect_options o;
        o.timeout = std::chrono::seconds(2);
        auto c = orderly::connect(text, o);
        ASSERT_FALSE(c) << text;
        EXPECT_EQ(c.error().code, make_error_code(errc::address_parse)) << c.error().detail;
    }
    // The two-argument resolve() does not look it up either.
    auto r = resolve("999.1.1.1", "80");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(errc::address_parse)) << r.error().detail;
    // Names with digits are still names, valid addresses still addresses.
    EXPECT_TRUE(split_host_port("1.example:80"));
    EXPECT_TRUE(endpoint::parse("10.0.0.1:80"));
}

TEST(address_hints, regular_file_in_the_way_of_a_unix_path) {
    const std::string path = test::temp_socket_path();
    { std::ofstream(path) << "not a socket\n"; }
    auto ep = endpoint::unix_path(path);
    ASSERT_TRUE(ep);
    listen_options replace;
    replace.replace_unix_socket_file = true;  // never replaces a regular file
    auto l = listener::listen(*ep, replace);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code, std::errc::address_in_use);
    EXPECT_TRUE(contains(l.error().detail, "is a regular file, not a socket")) << l.error().detail;
    EXPECT_FALSE(contains(l.error().detail, "port")) << l.error().detail;
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);  // still there
    ::unlink(path.c_str());
}

TEST(address_hints, stale_and_live_unix_sockets_are_told_apart) {
    const std::string path = test::temp_socket_path();
    auto ep = endpoint::unix_path(path);
    ASSERT_TRUE(ep);
    {
        auto l = listener::listen(*ep);
        ASSERT_TRUE(l);
        auto again = listener::listen(*ep);
        ASSERT_FALSE(again);
        EXPECT_TRUE(contains(again.error().detail, "a process is listening"))
            << again.error().detail;
        unique_fd gone = l->release();  // the file stays behind when `gone` closes
    }
    auto stale = listener::listen(*ep);
    ASSERT_FALSE(stale);
    EXPECT_TRUE(contains(stale.error().detail, "stale socket")) << stale.error().detail;
    EXPECT_TRUE(contains(stale.error().detail, "rm " + path)) << stale.error().detail;
    ::unlink(path.c_str());
}

}  // namespace
}  // namespace orderly
