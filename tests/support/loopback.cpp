#include "support/loopback.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace orderly::test {

std::string temp_socket_path() {
    static std::atomic<int> counter{0};
    const char* dir = std::getenv("TMPDIR");
    std::string base = dir != nullptr && *dir != '\0' ? dir : "/tmp";
    return base + "/orderly-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter.fetch_add(1)) + ".sock";
}

bool ipv6_available() {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const endpoint ep = endpoint::ipv6_loopback(0);
    const bool ok = ::bind(fd, ep.data(), ep.size()) == 0;
    ::close(fd);
    return ok;
}

std::string to_string(transport t) {
    switch (t) {
        case transport::tcp4:
            return "tcp4";
        case transport::tcp6:
            return "tcp6";
        case transport::unix_path:
            return "unix";
    }
    return "?";
}

listener make_listener(transport t) {
    endpoint at;
    switch (t) {
        case transport::tcp4:
            at = endpoint::ipv4_loopback(0);
            break;
        case transport::tcp6:
            at = endpoint::ipv6_loopback(0);
            break;
        case transport::unix_path: {
            auto ep = endpoint::unix_path(temp_socket_path());
            EXPECT_TRUE(ep.has_value());
            if (!ep) return {};
            at = *ep;
            break;
        }
    }
    auto l = listener::listen(at);
    EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message());
    if (!l) return {};
    return std::move(*l);
}

socket_pair make_pair(transport t) {
    listener l = make_listener(t);
    if (!l.is_open()) return {};
    auto c = stream_socket::connect(l.local_endpoint(), std::chrono::seconds(5));
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
    if (!c) return {};
    auto s = l.accept(deadline::after(std::chrono::seconds(5)));
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    if (!s) return {};
    return {std::move(*c), std::move(*s)};
}

}  // namespace orderly::test
