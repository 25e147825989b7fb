#include "orderly/net/listener.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "address_hints.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/net/socket_options.hpp"

namespace orderly {
namespace {

failure<error_info> fail_at(const char* call, const endpoint& at, int err) {
    std::string what = std::string(call) + " " + at.to_string() + ": " + errno_code(err).message();
    if (err == EADDRINUSE && at.family() == address_family::unix_path) {
        what += detail::unix_path_in_use_hint(at.host());
    } else if (err == EADDRINUSE) {
        what += " (another socket is bound there; choose another port, or port 0 for any free one)";
    } else if (err == EACCES && at.is_ip() && at.port() != 0 && at.port() < 1024) {
        what += " (ports below 1024 need privileges; use a port >= 1024 or port 0)";
    } else if (err == EADDRNOTAVAIL) {
        what += " (no local interface has this address)";
    }
    return fail(errno_code(err), std::move(what));
}

}  // namespace

listener& listener::operator=(listener&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::move(o.fd_);
        local_ = o.local_;
        owns_unix_path_ = std::exchange(o.owns_unix_path_, false);
    }
    return *this;
}

listener::~listener() {
    close();
}

result<listener, error_info> listener::listen(const endpoint& at, const listen_options& opts) {
    if (at.family() == address_family::none) {
        return fail(make_error_code(errc::invalid_argument), "listen: no endpoint given");
    }
    unique_fd fd(::socket(at.domain(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return fail_at("socket", at, errno);
    if (at.is_ip()) {
        if (opts.reuse_address) {
            if (auto r = set_reuse_address(fd.get(), true); !r) {
                return fail_at("setsockopt SO_REUSEADDR", at, r.error().value());
            }
        }
        if (opts.reuse_port) {
            if (auto r = set_reuse_port(fd.get(), true); !r) {
                return fail_at("setsockopt SO_REUSEPORT", at, r.error().value());
            }
        }
        if (at.family() == address_family::ipv6 && opts.v6_only.has_value()) {
            if (auto r = set_v6_only(fd.get(), *opts.v6_only); !r) {
                return fail_at("setsockopt IPV6_V6ONLY", at, r.error().value());
            }
        }
    }
    const std::string path = at.family() == address_family::unix_path ? at.host() : std::string();
    if (!path.empty() && opts.replace_unix_socket_file) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) (void)::unlink(path.c_str());
    }
    if (::bind(fd.get(), at.data(), at.size()) != 0) return fail_at("bind", at, errno);
    listener l;
    l.owns_unix_path_ = !path.empty();
    l.local_ = at;
    l.fd_ = std::move(fd);
    if (::listen(l.fd_.get(), opts.backlog) != 0) return fail_at("listen", at, errno);
    if (at.is_ip()) {
        if (auto ep = local_endpoint_of(l.fd_.get())) l.local_ = *ep;  // the port 0 picked
    }
    return l;
}

result<stream_socket> listener::accept(deadline until) {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    for (;;) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            auto peer = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
            return peer ? stream_socket(unique_fd(fd), *peer) : stream_socket(unique_fd(fd));
        }
        const int err = errno;
        // A client that gave up while queued is not our error; neither is an interrupted call.
        if (err == EINTR || err == ECONNABORTED) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) return fail(errno_code(err));
        auto ready = wait_ready(fd_.get(), POLLIN, until);
        if (!ready) return fail(ready.error());
    }
}

void listener::close() noexcept {
    if (!fd_.valid()) return;
    (void)fd_.close();
    if (owns_unix_path_) {
        (void)::unlink(local_.host().c_str());
        owns_unix_path_ = false;
    }
}

unique_fd listener::release() noexcept {
    owns_unix_path_ = false;
    return std::move(fd_);
}

}  // namespace orderly
