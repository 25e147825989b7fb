#pragma once
// Counting this process's open descriptors (/proc/self/fd), for leak checks.

#include <vector>

namespace orderly::test {

// Number of open descriptors, not counting the one used to list them.
int open_fd_count();
// The open descriptor numbers, for a readable leak message.
std::vector<int> open_fds();

}  // namespace orderly::test
