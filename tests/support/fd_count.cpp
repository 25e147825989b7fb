#include "support/fd_count.hpp"

#include <dirent.h>

#include <cstdlib>

namespace orderly::test {

std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return fds;
    const int own = ::dirfd(dir);
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd != own) fds.push_back(fd);
    }
    ::closedir(dir);
    return fds;
}

int open_fd_count() {
    return static_cast<int>(open_fds().size());
}

}  // namespace orderly::test
