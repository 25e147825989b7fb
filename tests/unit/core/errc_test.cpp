#include "orderly/core/errc.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace orderly {
namespace {

TEST(errc, category_and_messages) {
    const std::error_code ec = errc::drain_limit;
    EXPECT_STREQ(ec.category().name(), "orderly");
    EXPECT_NE(ec.message().find("drain limit"), std::string::npos);
    for (int v = 1; v <= static_cast<int>(errc::tls_not_established); ++v) {
        const std::error_code e(v, orderly_category());
        EXPECT_EQ(e.message().find("unknown"), std::string::npos) << v;
    }
}

TEST(errc, maps_to_portable_conditions) {
    EXPECT_EQ(std::error_code(errc::timed_out), std::errc::timed_out);
    EXPECT_EQ(std::error_code(errc::peer_reset), std::errc::connection_reset);
    EXPECT_EQ(errno_code(ECONNRESET), std::errc::connection_reset);
    EXPECT_NE(std::error_code(errc::address_parse), std::errc::invalid_argument);
}

}  // namespace
}  // namespace orderly
