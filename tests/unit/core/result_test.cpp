#include "orderly/core/result.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

result<int> parse_digit(char c) {
    if (c < '0' || c > '9') return fail(make_error_code(errc::invalid_argument));
    return c - '0';
}

TEST(result, holds_a_value) {
    auto r = parse_digit('7');
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(static_cast<bool>(r));
    EXPECT_EQ(*r, 7);
    EXPECT_EQ(r.value(), 7);
    EXPECT_EQ(r.value_or(3), 7);
}

TEST(result, holds_an_error_and_value_throws_system_error) {
    auto r = parse_digit('x');
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_EQ(r.value_or(3), 3);
    try {
        (void)r.value();
        FAIL() << "value() on an error must throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), errc::invalid_argument);
    }
}

TEST(result, error_info_throws_with_detail) {
    result<std::string, error_info> r = fail(make_error_code(errc::address_parse), "bad port 'x'");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "bad port 'x'");
    try {
        (void)r.value();
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("bad port 'x'"), std::string::npos);
        EXPECT_EQ(e.code(), errc::address_parse);
    }
}

// The detail of a system error already ends with the code's message; what() must not repeat it.
TEST(result, error_info_what_is_the_message_once) {
    const auto refused = errno_code(ECONNREFUSED);
    const std::string detail = "connect to 127.0.0.1:7000: " + refused.message();
    result<int, error_info> r = fail(refused, detail);
    try {
        (void)r.value();
        FAIL() << "value() on an error must throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()), detail);
        EXPECT_EQ(e.code(), std::errc::connection_refused);
    }
    // Without a detail, what() is the code's message, as error_info::message() says.
    result<void, error_info> bare = fail(refused);
    try {
        bare.value();
        FAIL() << "value() on an error must throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()), refused.message());
    }
}

TEST(result, move_only_values_and_copies) {
    result<std::unique_ptr<int>> r = std::make_unique<int>(5);
    auto moved = std::move(r);
    ASSERT_TRUE(moved);
    EXPECT_EQ(**moved, 5);

    result<std::string> a = std::string("abc");
    result<std::string> b = fail(make_error_code(errc::timed_out));
    b = a;
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, "abc");
    a = fail(make_error_code(errc::timed_out));
    EXPECT_FALSE(a);
    EXPECT_EQ(a.error(), errc::timed_out);
}

TEST(result, void_specialisation) {
    result<void> ok;
    EXPECT_TRUE(ok);
    EXPECT_NO_THROW(ok.value());
    result<void> bad = fail(make_error_code(errc::not_open));
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::not_open);
    EXPECT_THROW(bad.value(), std::system_error);
}

}  // namespace
}  // namespace orderly
