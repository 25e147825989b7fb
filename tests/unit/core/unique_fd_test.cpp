#include "orderly/core/unique_fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

namespace orderly {
namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(unique_fd, closes_exactly_once_on_destruction) {
    int raw = -1;
    {
        unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        raw = fd.get();
        ASSERT_TRUE(fd.valid());
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_FALSE(is_open(raw));
}

TEST(unique_fd, move_transfers_ownership) {
    unique_fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int raw = a.get();
    unique_fd b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(b.get(), raw);
    unique_fd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_TRUE(is_open(raw));
}

TEST(unique_fd, release_gives_up_ownership) {
    unique_fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int raw = a.release();
    EXPECT_FALSE(a.valid());
    EXPECT_TRUE(is_open(raw));
    ::close(raw);
}

TEST(unique_fd, close_is_idempotent_and_reports_errno) {
    unique_fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    EXPECT_EQ(a.close(), 0);
    EXPECT_EQ(a.close(), 0);
    EXPECT_FALSE(a.valid());
    unique_fd bogus(1'000'000);  // never a valid descriptor here
    EXPECT_EQ(bogus.close(), EBADF);
}

}  // namespace
}  // namespace orderly
