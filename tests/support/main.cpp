// gtest main for every orderly test binary: a listener fails any test that ends with more open
// descriptors than it started with, so every fixture is checked for leaks without opting in.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "support/fd_count.hpp"

namespace {

class fd_leak_checker : public testing::EmptyTestEventListener {
    void OnTestStart(const testing::TestInfo& /*info*/) override {
        before_ = orderly::test::open_fds();
    }
    void OnTestEnd(const testing::TestInfo& /*info*/) override {
        // Threads of the test may still be closing their last descriptor; give them a moment.
        std::vector<int> after;
        for (int i = 0; i < 50; ++i) {
            after = orderly::test::open_fds();
            if (after.size() <= before_.size()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::string leaked;
        for (int fd : after) {
            if (std::find(before_.begin(), before_.end(), fd) == before_.end()) {
                leaked += " " + std::to_string(fd);
            }
        }
        ADD_FAILURE() << "descriptor leak: " << before_.size() << " open before the test, "
                      << after.size() << " after; new:" << leaked;
    }
    std::vector<int> before_;
};

}  // namespace

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    testing::UnitTest::GetInstance()->listeners().Append(new fd_leak_checker);
    return RUN_ALL_TESTS();
}
