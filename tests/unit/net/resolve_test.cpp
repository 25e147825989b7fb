#include "orderly/net/resolve.hpp"

#include <gtest/gtest.h>
#include <netdb.h>

#include <algorithm>
#include <string>
#include <vector>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

bool is_loopback(const endpoint& e) {
    const std::string h = e.host();
    return h == "::1" || h.rfind("127.", 0) == 0;
}

void expect_no_duplicates(const std::vector<endpoint>& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        for (std::size_t j = i + 1; j < v.size(); ++j) {
            EXPECT_NE(v[i], v[j]) << "duplicate " << v[i].to_string();
        }
    }
}

TEST(resolve, localhost_is_loopback) {
    auto r = resolve("localhost", "8080");
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_FALSE(r->empty());
    for (const endpoint& e : *r) {
        EXPECT_TRUE(e.is_ip()) << e.to_string();
        EXPECT_TRUE(is_loopback(e)) << e.to_string();
        EXPECT_EQ(e.port(), 8080);
    }
    expect_no_duplicates(*r);
}

TEST(resolve, localhost_with_family) {
    resolve_options v4;
    v4.family = address_family::ipv4;
    auto r = resolve("localhost:1", v4);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_FALSE(r->empty());
    for (const endpoint& e : *r)
        EXPECT_EQ(e.family(), address_family::ipv4) << e.to_string();
    EXPECT_NE(std::find(r->begin(), r->end(), endpoint::ipv4_loopback(1)), r->end());
}

TEST(resolve, numeric_forms_need_no_lookup) {
    struct row {
        const char* text;
        const char* canonical;
    };
    for (const row& r :
         {row{"127.0.0.1:8080", "127.0.0.1:8080"}, row{"[::1]:80", "[::1]:80"},
          row{"[fe80::1%lo]:7", "[fe80::1%lo]:7"}, row{"10.0.0.1:00009", "10.0.0.1:9"},
          row{"unix:/run/x.sock", "unix:/run/x.sock"}, row{"unix:@abstract", "unix:@abstract"}}) {
        auto got = resolve(r.text);
        ASSERT_TRUE(got.has_value()) << r.text << ": " << got.error().message();
        ASSERT_EQ(got->size(), 1U) << r.text;
        EXPECT_EQ(got->front().to_string(), r.canonical);
    }
    auto two_part = resolve("::1", "443");
    ASSERT_TRUE(two_part.has_value()) << two_part.error().message();
    ASSERT_EQ(two_part->size(), 1U);
    EXPECT_EQ(two_part->front(), endpoint::ipv6_loopback(443));
}

TEST(resolve, numeric_family_mismatch_is_an_error) {
    resolve_options v6;
    v6.family = address_family::ipv6;
    auto r = resolve("127.0.0.1:80", v6);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::resolve));
    EXPECT_NE(r.error().detail.find("127.0.0.1"), std::string::npos) << r.error().detail;
}

TEST(resolve, unknown_name_is_resolve_error_naming_the_host) {
    auto r = resolve("nosuch.invalid", "80");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::resolve));
    EXPECT_NE(r.error().detail.find("'nosuch.invalid'"), std::string::npos) << r.error().detail;
    EXPECT_NE(r.error().detail.find("cannot resolve"), std::string::npos) << r.error().detail;

    auto joined = resolve("nosuch.invalid:80");
    ASSERT_FALSE(joined.has_value());
    EXPECT_EQ(joined.error().code, make_error_code(errc::resolve));
    EXPECT_NE(joined.error().message().find("nosuch.invalid"), std::string::npos);
}

TEST(resolve, bad_port_is_address_parse) {
    for (const char* text : {"localhost:70000", "localhost:123456", "127.0.0.1:65536",
                             "[::1]:99999", "localhost:", "localhost"}) {
        auto r = resolve(text);
        ASSERT_FALSE(r.has_value()) << text;
        EXPECT_EQ(r.error().code, make_error_code(errc::address_parse))
            << text << ": " << r.error().message();
        EXPECT_FALSE(r.error().detail.empty());
    }
    auto r = resolve("localhost", "70000");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::address_parse));
    EXPECT_NE(r.error().detail.find("'70000'"), std::string::npos) << r.error().detail;
    EXPECT_NE(r.error().detail.find("out of range"), std::string::npos) << r.error().detail;

    auto empty = resolve("localhost", "");
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error().code, make_error_code(errc::address_parse));

    auto service = resolve("localhost", "no-such-service-name");
    ASSERT_FALSE(service.has_value());
    EXPECT_EQ(service.error().code, make_error_code(errc::address_parse))
        << service.error().message();
    EXPECT_NE(service.error().detail.find("'no-such-service-name'"), std::string::npos);
}

TEST(resolve, numeric_address_with_bad_scope_is_not_looked_up) {
    auto r = resolve("[fe80::1%nosuchif0]:80");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::address_parse));
    EXPECT_NE(r.error().detail.find("nosuchif0"), std::string::npos) << r.error().detail;
}

TEST(resolve, unbracketed_ipv6_is_a_shape_error) {
    auto r = resolve("::1:80");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::address_parse));
    EXPECT_NE(r.error().detail.find("[::1]:80"), std::string::npos) << r.error().detail;
}

TEST(resolve, service_name) {
    if (::getservbyname("http", "tcp") == nullptr) GTEST_SKIP() << "no 'http' in /etc/services";
    ::endservent();
    auto r = resolve("127.0.0.1", "http");
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->size(), 1U);
    EXPECT_EQ(r->front(), endpoint::ipv4_loopback(80));
}

TEST(resolve, passive_empty_host_is_any) {
    resolve_options passive;
    passive.passive = true;
    auto r = resolve(":0", passive);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_FALSE(r->empty());
    for (const endpoint& e : *r) {
        EXPECT_TRUE(e == endpoint::ipv4_any(0) || e == endpoint::ipv6_any(0)) << e.to_string();
    }
    expect_no_duplicates(*r);
}

}  // namespace
}  // namespace orderly
