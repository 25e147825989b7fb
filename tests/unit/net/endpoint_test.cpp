#include "orderly/net/endpoint.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly {
namespace {

// ---- good inputs -----------------------------------------------------------------------------

struct good_case {
    std::string text;
    address_family family;
    std::string host;
    std::uint16_t port;
    std::string canonical;  // to_string(); equal to text unless the input was not canonical
};

class endpoint_good : public testing::TestWithParam<good_case> {};

TEST_P(endpoint_good, parses_prints_and_round_trips) {
    const good_case& c = GetParam();
    auto e = endpoint::parse(c.text);
    ASSERT_TRUE(e.has_value()) << c.text << ": " << e.error().message();
    EXPECT_EQ(e->family(), c.family);
    EXPECT_EQ(e->host(), c.host);
    EXPECT_EQ(e->port(), c.port);
    EXPECT_EQ(e->to_string(), c.canonical);

    auto again = endpoint::parse(e->to_string());
    ASSERT_TRUE(again.has_value()) << again.error().message();
    EXPECT_EQ(*again, *e);
    EXPECT_EQ(again->to_string(), c.canonical);
}

INSTANTIATE_TEST_SUITE_P(
    texts, endpoint_good,
    testing::Values(
        good_case{"127.0.0.1:8080", address_family::ipv4, "127.0.0.1", 8080, "127.0.0.1:8080"},
        good_case{"0.0.0.0:0", address_family::ipv4, "0.0.0.0", 0, "0.0.0.0:0"},
        good_case{"255.255.255.255:65535", address_family::ipv4, "255.255.255.255", 65535,
                  "255.255.255.255:65535"},
        good_case{"10.1.2.3:00080", address_family::ipv4, "10.1.2.3", 80, "10.1.2.3:80"},
        good_case{"1.2.3.4:0", address_family::ipv4, "1.2.3.4", 0, "1.2.3.4:0"},
        good_case{"[::1]:8080", address_family::ipv6, "::1", 8080, "[::1]:8080"},
        good_case{"[::]:0", address_family::ipv6, "::", 0, "[::]:0"},
        good_case{"[2001:DB8::1]:443", address_family::ipv6, "2001:db8::1", 443,
                  "[2001:db8::1]:443"},
        good_case{"[2001:0db8:0000:0000:0000:0000:0000:0001]:1", address_family::ipv6,
                  "2001:db8::1", 1, "[2001:db8::1]:1"},
        good_case{"[::ffff:192.0.2.1]:80", address_family::ipv6, "::ffff:192.0.2.1", 80,
                  "[::ffff:192.0.2.1]:80"},
        good_case{"[fe80::1%lo]:80", address_family::ipv6, "fe80::1%lo", 80, "[fe80::1%lo]:80"},
        good_case{"[fe80::1%1]:80", address_family::ipv6, "fe80::1%lo", 80, "[fe80::1%lo]:80"},
        good_case{"[fe80::1%4000000]:80", address_family::ipv6, "fe80::1%4000000", 80,
                  "[fe80::1%4000000]:80"},
        good_case{"unix:/run/app.sock", address_family::unix_path, "/run/app.sock", 0,
                  "unix:/run/app.sock"},
        good_case{"unix:relative/sock", address_family::unix_path, "relative/sock", 0,
                  "unix:relative/sock"},
        good_case{"unix:/with:colon]and[brackets", address_family::unix_path,
                  "/with:colon]and[brackets", 0, "unix:/with:colon]and[brackets"},
        good_case{"unix:" + std::string(107, 'p'), address_family::unix_path, std::string(107, 'p'),
                  0, "unix:" + std::string(107, 'p')},
        good_case{"unix:./sock", address_family::unix_path, "./sock", 0, "unix:./sock"},
        // A relative path starting with '@' is written with "./" so it does not read as abstract.
        good_case{"unix:./@file", address_family::unix_path, "@file", 0, "unix:./@file"},
        good_case{"unix:./@" + std::string(106, 'p'), address_family::unix_path,
                  "@" + std::string(106, 'p'), 0, "unix:./@" + std::string(106, 'p')},
        good_case{"unix:@name", address_family::unix_abstract, "name", 0, "unix:@name"},
        good_case{"unix:@@", address_family::unix_abstract, "@", 0, "unix:@@"},
        good_case{"unix:@" + std::string(107, 'a'), address_family::unix_abstract,
                  std::string(107, 'a'), 0, "unix:@" + std::string(107, 'a')}));

// ---- bad inputs ------------------------------------------------------------------------------

struct bad_case {
    std::string text;
    std::vector<std::string> mentions;  // substrings the detail must contain
};

class endpoint_bad : public testing::TestWithParam<bad_case> {};

TEST_P(endpoint_bad, is_address_parse_naming_the_part) {
    const bad_case& c = GetParam();
    auto e = endpoint::parse(c.text);
    ASSERT_FALSE(e.has_value()) << "'" << c.text << "' parsed as " << e->to_string();
    EXPECT_EQ(e.error().code, make_error_code(errc::address_parse)) << c.text;
    EXPECT_FALSE(e.error().detail.empty());
    for (const std::string& m : c.mentions) {
        EXPECT_NE(e.error().detail.find(m), std::string::npos)
            << "detail for '" << c.text << "' does not mention '" << m << "': " << e.error().detail;
    }
}

INSTANTIATE_TEST_SUITE_P(
    texts, endpoint_bad,
    testing::Values(
        bad_case{"", {"empty"}},
        bad_case{"1.2.3.4:70000", {"port '70000' in '1.2.3.4:70000' is out of range (0-65535)"}},
        bad_case{"1.2.3.4:65536", {"'65536'", "out of range"}},
        bad_case{"127.0.0.1", {"missing port in '127.0.0.1': expected HOST:PORT"}},
        bad_case{"127.0.0.1:", {"missing port", "'127.0.0.1:'"}},
        bad_case{"1.2.3.4:+80", {"'+80'", "decimal digits"}},
        bad_case{"1.2.3.4:-1", {"'-1'", "decimal digits"}},
        bad_case{"1.2.3.4: 80", {"' 80'", "decimal digits"}}, bad_case{"1.2.3.4:80 ", {"'80 '"}},
        bad_case{"1.2.3.4:0x50", {"'0x50'"}}, bad_case{"1.2.3.4:000080", {"'000080'", "5 digits"}},
        bad_case{"1.2.3.4:99999999999999999999", {"'99999999999999999999'"}},
        bad_case{":80", {"missing host", "HOST:PORT"}}, bad_case{"1.2.3:80", {"'1.2.3'", "IPv4"}},
        bad_case{"256.1.1.1:80", {"'256.1.1.1'", "IPv4"}},
        bad_case{"01.2.3.4:80", {"'01.2.3.4'", "leading zeros"}},
        bad_case{"localhost:80", {"'localhost'", "resolve()"}},
        bad_case{" 1.2.3.4:80", {"' 1.2.3.4'"}}, bad_case{"[::1", {"'[::1' has no closing ']'"}},
        bad_case{"[::1:80", {"'[::1:80' has no closing ']'"}},
        bad_case{"[::1]", {"missing port", "'[::1]'", "[::1]:PORT"}},
        bad_case{"[::1]:", {"missing port", "[::1]:PORT"}},
        bad_case{"[::1]80", {"'80'", "after ']'"}},
        bad_case{"[::1]:70000", {"'70000'", "out of range (0-65535)"}},
        bad_case{"[]:80", {"empty IPv6 address", "'[]:80'"}},
        bad_case{"[zz::1]:80", {"'zz::1'", "not a valid IPv6 address"}},
        bad_case{"[1.2.3.4]:80", {"IPv4", "'1.2.3.4'", "write 1.2.3.4:80"}},
        bad_case{"[fe80::1%]:80", {"empty scope id", "interface"}},
        bad_case{"[fe80::1%nosuchif0]:80", {"unknown interface 'nosuchif0'"}},
        bad_case{"[fe80::1%averyveryverylonginterfacename]:80",
                 {"'averyveryverylonginterfacename'"}},
        bad_case{"[fe80::1%99999999999]:80", {"'99999999999'", "out of range"}},
        bad_case{"[fe80::1%4294967296]:80", {"'4294967296'", "out of range"}},
        bad_case{"::1:80", {"IPv6 address must be in brackets: '::1:80' (write [::1]:80)"}},
        bad_case{"::1", {"brackets", "'::1'", "[::1]:PORT"}},
        bad_case{"fe80::1%lo:80", {"brackets", "[fe80::1%lo]:80"}},
        bad_case{"a:b:c", {"brackets", "'a:b:c'"}}, bad_case{"1.2.3.4]:80", {"unbalanced ']'"}},
        bad_case{"x[::1]:80", {"'['"}}, bad_case{"unix:", {"unix path is empty"}},
        bad_case{"unix:@", {"abstract name is empty"}},
        bad_case{"unix:" + std::string(120, 'p'),
                 {"unix path is 120 bytes, longer than the 107 the kernel accepts"}},
        bad_case{"unix:@" + std::string(108, 'a'), {"108 bytes", "107"}},
        bad_case{std::string("unix:/a\0b", 9), {"NUL"}}));

// ---- builders, equality, accessors -----------------------------------------------------------

TEST(endpoint, default_is_none) {
    const endpoint e;
    EXPECT_EQ(e.family(), address_family::none);
    EXPECT_EQ(e.to_string(), "(none)");
    EXPECT_EQ(e.port(), 0);
    EXPECT_EQ(e.size(), 0U);
    EXPECT_EQ(e.domain(), AF_UNSPEC);
    EXPECT_FALSE(e.is_ip());
    EXPECT_FALSE(e.is_unix());
    EXPECT_EQ(e, endpoint{});
}

TEST(endpoint, builders) {
    EXPECT_EQ(endpoint::ipv4_loopback(80).to_string(), "127.0.0.1:80");
    EXPECT_EQ(endpoint::ipv6_loopback(80).to_string(), "[::1]:80");
    EXPECT_EQ(endpoint::ipv4_any(1).to_string(), "0.0.0.0:1");
    EXPECT_EQ(endpoint::ipv6_any(65535).to_string(), "[::]:65535");
    EXPECT_EQ(endpoint::ipv4_loopback(80).domain(), AF_INET);
    EXPECT_EQ(endpoint::ipv6_loopback(80).domain(), AF_INET6);
    EXPECT_EQ(endpoint::ipv4_loopback(80).size(), sizeof(sockaddr_in));
    EXPECT_EQ(endpoint::ipv6_loopback(80).size(), sizeof(sockaddr_in6));
    EXPECT_TRUE(endpoint::ipv4_loopback(80).is_ip());
    EXPECT_EQ(endpoint::ipv4_loopback(80), *endpoint::parse("127.0.0.1:80"));
    EXPECT_EQ(endpoint::ipv6_loopback(80), *endpoint::parse("[::1]:80"));
}

TEST(endpoint, unix_builders_and_lengths) {
    auto p = endpoint::unix_path("/tmp/x");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->size(), offsetof(sockaddr_un, sun_path) + 6 + 1);
    EXPECT_EQ(p->domain(), AF_UNIX);
    EXPECT_TRUE(p->is_unix());
    EXPECT_EQ(p->port(), 0);
    const auto* sun = reinterpret_cast<const sockaddr_un*>(p->data());
    EXPECT_STREQ(sun->sun_path, "/tmp/x");

    auto a = endpoint::unix_abstract("name");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->size(), offsetof(sockaddr_un, sun_path) + 1 + 4);
    const auto* asun = reinterpret_cast<const sockaddr_un*>(a->data());
    EXPECT_EQ(asun->sun_path[0], '\0');
    EXPECT_EQ(std::string(asun->sun_path + 1, 4), "name");

    auto too_long = endpoint::unix_path(std::string(108, 'x'));
    ASSERT_FALSE(too_long.has_value());
    EXPECT_EQ(too_long.error().code, make_error_code(errc::invalid_argument));
    EXPECT_NE(too_long.error().detail.find("108 bytes"), std::string::npos);
    auto empty = endpoint::unix_path("");
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error().code, make_error_code(errc::invalid_argument));
    EXPECT_FALSE(endpoint::unix_abstract("").has_value());
    EXPECT_FALSE(endpoint::unix_abstract(std::string(108, 'x')).has_value());
}

TEST(endpoint, equality) {
    EXPECT_EQ(*endpoint::parse("1.2.3.4:5"), *endpoint::parse("1.2.3.4:0005"));
    EXPECT_NE(*endpoint::parse("1.2.3.4:5"), *endpoint::parse("1.2.3.4:6"));
    EXPECT_NE(*endpoint::parse("1.2.3.4:5"), *endpoint::parse("1.2.3.5:5"));
    EXPECT_NE(*endpoint::parse("[::1]:5"), *endpoint::parse("[::2]:5"));
    EXPECT_NE(*endpoint::parse("[fe80::1%1]:5"), *endpoint::parse("[fe80::1]:5"));
    EXPECT_NE(*endpoint::parse("[::ffff:1.2.3.4]:5"), *endpoint::parse("1.2.3.4:5"));
    EXPECT_NE(*endpoint::parse("unix:/a"), *endpoint::parse("unix:@a"));
    EXPECT_NE(*endpoint::parse("unix:/a"), *endpoint::parse("unix:/ab"));
    EXPECT_EQ(*endpoint::parse("unix:/a"), *endpoint::unix_path("/a"));
    // The path "@a" and the abstract name "a" stay apart through the text form.
    const auto at_path = *endpoint::unix_path("@a");
    EXPECT_EQ(at_path.to_string(), "unix:./@a");
    EXPECT_EQ(*endpoint::parse(at_path.to_string()), at_path);
    EXPECT_NE(at_path, *endpoint::parse("unix:@a"));
    // A path that already starts with "./@" keeps its bytes through the text form too (found by
    // fuzz_endpoint; the input is in fuzz/regressions).
    const auto dot_at_path = *endpoint::unix_path("./@a");
    EXPECT_EQ(dot_at_path.to_string(), "unix:././@a");
    EXPECT_EQ(*endpoint::parse(dot_at_path.to_string()), dot_at_path);
    EXPECT_NE(*endpoint::parse("unix:@a"), *endpoint::parse("unix:@ab"));
    EXPECT_NE(endpoint{}, endpoint::ipv4_any(0));
}

TEST(endpoint, with_port) {
    const endpoint e = *endpoint::parse("[fe80::1%lo]:80");
    const endpoint f = e.with_port(9);
    EXPECT_EQ(f.port(), 9);
    EXPECT_EQ(f.host(), "fe80::1%lo");
    EXPECT_EQ(e.port(), 80);
    EXPECT_EQ(endpoint::ipv4_loopback(1).with_port(2), endpoint::ipv4_loopback(2));
    const endpoint u = *endpoint::parse("unix:/x");
    EXPECT_EQ(u.with_port(5), u);
}

// ---- split_host_port -------------------------------------------------------------------------

TEST(split_host_port, shapes) {
    struct row {
        const char* text;
        const char* host;
        const char* port;
    };
    for (const row& r :
         {row{"example.com:80", "example.com", "80"}, row{"[::1]:443", "::1", "443"},
          row{":8080", "", "8080"}, row{"host:http", "host", "http"},
          row{"[fe80::1%eth0]:1", "fe80::1%eth0", "1"}, row{"1.2.3.4:99999", "1.2.3.4", "99999"}}) {
        auto hp = split_host_port(r.text);
        ASSERT_TRUE(hp.has_value()) << r.text << ": " << hp.error().message();
        EXPECT_EQ(hp->host, r.host) << r.text;
        EXPECT_EQ(hp->port, r.port) << r.text;
    }
    for (const char* bad : {"", "example.com", "example.com:", "[::1", "[::1]", "[::1]:", "::1:80",
                            "a]:80", "[::1]x:80"}) {
        auto hp = split_host_port(bad);
        ASSERT_FALSE(hp.has_value()) << bad;
        EXPECT_EQ(hp.error().code, make_error_code(errc::address_parse)) << bad;
        EXPECT_FALSE(hp.error().detail.empty());
    }
    EXPECT_NE(split_host_port("example.com").error().detail.find("'example.com'"),
              std::string::npos);
}

// ---- from_sockaddr ---------------------------------------------------------------------------

TEST(from_sockaddr, ipv4_and_ipv6) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(1234);
    ASSERT_EQ(::inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr), 1);
    auto e = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->to_string(), "192.0.2.7:1234");

    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(80);
    sin6.sin6_scope_id = 1;
    ASSERT_EQ(::inet_pton(AF_INET6, "fe80::2", &sin6.sin6_addr), 1);
    auto e6 = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
    ASSERT_TRUE(e6.has_value());
    EXPECT_EQ(*e6, *endpoint::parse("[fe80::2%1]:80"));

    // Too short for its family, unknown family, null.
    EXPECT_FALSE(endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), 4).has_value());
    EXPECT_FALSE(
        endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin).has_value());
    sockaddr_storage other{};
    other.ss_family = AF_PACKET;
    auto bad = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&other), sizeof other);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error(), make_error_code(errc::invalid_argument));
    EXPECT_FALSE(endpoint::from_sockaddr(nullptr, 16).has_value());
}

TEST(from_sockaddr, unix_forms) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, "/tmp/sock");
    const auto base = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    // With and without the NUL counted, and with the whole struct: the same endpoint.
    for (socklen_t len : {static_cast<socklen_t>(base + 10), static_cast<socklen_t>(base + 9),
                          static_cast<socklen_t>(sizeof sun)}) {
        auto e = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sun), len);
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(*e, *endpoint::unix_path("/tmp/sock")) << len;
        EXPECT_EQ(e->to_string(), "unix:/tmp/sock");
    }

    sockaddr_un abs{};
    abs.sun_family = AF_UNIX;
    std::memcpy(abs.sun_path + 1, "abc", 3);
    auto a = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&abs),
                                     static_cast<socklen_t>(base + 4));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->family(), address_family::unix_abstract);
    EXPECT_EQ(*a, *endpoint::unix_abstract("abc"));
    EXPECT_EQ(a->to_string(), "unix:@abc");

    auto unnamed = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sun), sizeof(sa_family_t));
    ASSERT_TRUE(unnamed.has_value());
    EXPECT_EQ(unnamed->family(), address_family::unix_path);
    EXPECT_EQ(unnamed->host(), "");
    EXPECT_EQ(unnamed->to_string(), "unix:(unnamed)");
}

TEST(from_sockaddr, kernel_filled_addresses) {
    // A real bound socket: what getsockname() reports must read back as what we bound.
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid());
    const endpoint want = endpoint::ipv4_loopback(0);
    ASSERT_EQ(::bind(s.get(), want.data(), want.size()), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    auto got = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->host(), "127.0.0.1");
    EXPECT_NE(got->port(), 0);
    EXPECT_EQ(*got, want.with_port(got->port()));

    // An abstract Unix name (no file left behind) round-trips through the kernel.
    const std::string name = "orderly-endpoint-test-" + std::to_string(::getpid());
    auto abs = endpoint::unix_abstract(name);
    ASSERT_TRUE(abs.has_value());
    unique_fd u(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(u.valid());
    ASSERT_EQ(::bind(u.get(), abs->data(), abs->size()), 0) << std::strerror(errno);
    ss = {};
    len = sizeof ss;
    ASSERT_EQ(::getsockname(u.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    auto got_abs = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    ASSERT_TRUE(got_abs.has_value());
    EXPECT_EQ(*got_abs, *abs);
    EXPECT_EQ(got_abs->to_string(), "unix:@" + name);

    // An unbound Unix socket is unnamed.
    unique_fd v(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(v.valid());
    ss = {};
    len = sizeof ss;
    ASSERT_EQ(::getsockname(v.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    auto got_unnamed = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    ASSERT_TRUE(got_unnamed.has_value());
    EXPECT_EQ(got_unnamed->to_string(), "unix:(unnamed)");
}

TEST(from_sockaddr, unix_path_bound_by_kernel) {
    char dir_template[] = "/tmp/orderly-endpoint-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string path = std::string(dir_template) + "/s";
    auto ep = endpoint::unix_path(path);
    ASSERT_TRUE(ep.has_value());
    {
        unique_fd u(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(u.valid());
        ASSERT_EQ(::bind(u.get(), ep->data(), ep->size()), 0) << std::strerror(errno);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ASSERT_EQ(::getsockname(u.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
        auto got = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(*got, *ep);
        EXPECT_EQ(got->to_string(), "unix:" + path);
    }
    ::unlink(path.c_str());
    ::rmdir(dir_template);
}

TEST(endpoint_of_socket, local_bound_and_peer_not_connected) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    const endpoint any = endpoint::ipv4_loopback(0);
    ASSERT_EQ(::bind(fd, any.data(), any.size()), 0);
    auto local = local_endpoint_of(fd);
    ASSERT_TRUE(local.has_value());
    EXPECT_EQ(local->host(), "127.0.0.1");
    EXPECT_NE(local->port(), 0);
    auto peer = peer_endpoint_of(fd);
    ASSERT_FALSE(peer.has_value());
    EXPECT_EQ(peer.error(), std::errc::not_connected);
    ::close(fd);
    EXPECT_EQ(local_endpoint_of(fd).error(), std::errc::bad_file_descriptor);
}

}  // namespace
}  // namespace orderly
