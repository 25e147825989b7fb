#include "orderly/core/deadline.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(deadline, never_never_expires) {
    const deadline d = deadline::never();
    EXPECT_TRUE(d.is_never());
    EXPECT_FALSE(d.expired());
    EXPECT_EQ(d.poll_timeout_ms(), -1);
    EXPECT_EQ(d.remaining(), clock::duration::max());
}

TEST(deadline, after_expires_and_rounds_up) {
    const deadline d = deadline::after(30ms);
    EXPECT_FALSE(d.expired());
    const int ms = d.poll_timeout_ms();
    EXPECT_GT(ms, 0);
    EXPECT_LE(ms, 30);
    std::this_thread::sleep_for(40ms);
    EXPECT_TRUE(d.expired());
    EXPECT_EQ(d.poll_timeout_ms(), 0);
    EXPECT_EQ(d.remaining(), clock::duration::zero());
}

TEST(deadline, sub_millisecond_remainder_is_not_zero) {
    // A wait of 0 ms would spin until the deadline; rounding up avoids that.
    const deadline d = deadline::after(100us);
    if (!d.expired()) {
        EXPECT_GE(d.poll_timeout_ms(), 1);
    }
}

TEST(deadline, earliest) {
    const deadline a = deadline::after(1s);
    const deadline b = deadline::after(2s);
    EXPECT_EQ(earliest(a, b).when(), a.when());
    EXPECT_EQ(earliest(deadline::never(), b).when(), b.when());
}

}  // namespace
}  // namespace orderly
