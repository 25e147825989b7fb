#include "orderly/core/unique_fd.hpp"

#include <unistd.h>

#include <cerrno>

namespace orderly {

void unique_fd::reset(int fd) noexcept {
    const int old = std::exchange(fd_, fd);
    if (old >= 0) {
        // Linux releases the descriptor even when close() fails; retrying on EINTR could close a
        // descriptor another thread just received.
        (void)::close(old);
    }
}

int unique_fd::close() noexcept {
    const int old = std::exchange(fd_, -1);
    if (old < 0) return 0;
    return ::close(old) == 0 ? 0 : errno;
}

}  // namespace orderly
