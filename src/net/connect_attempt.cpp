#include "connect_attempt.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "orderly/core/errc.hpp"
#include "orderly/net/socket_options.hpp"

namespace orderly::detail {

result<started_attempt> start_attempt(const endpoint& to) noexcept {
    started_attempt a;
    a.fd.reset(::socket(to.domain(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!a.fd) return fail(errno_code(errno));
    if (::connect(a.fd.get(), to.data(), to.size()) == 0) {
        a.connected = true;
        return a;
    }
    // EINTR: the connect goes on in the background, exactly like EINPROGRESS.
    if (errno != EINPROGRESS && errno != EINTR) return fail(errno_code(errno));
    return a;
}

std::error_code attempt_result(int fd) noexcept {
    auto err = take_socket_error(fd);
    if (!err) return err.error();
    return *err == 0 ? std::error_code{} : errno_code(*err);
}

bool attempt_connected(int fd) noexcept {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP)) != 0) return false;
    return !attempt_result(fd);
}

std::string list_target(std::span<const endpoint> to) {
    return to.size() == 1 ? to.front().to_string() : std::to_string(to.size()) + " addresses";
}

void abort_attempt(unique_fd& fd) noexcept {
    if (!fd) return;
    (void)set_linger(fd.get(), std::chrono::seconds(0));
    fd.reset();
}

}  // namespace orderly::detail
