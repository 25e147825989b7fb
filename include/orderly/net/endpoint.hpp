#pragma once
// endpoint: where a stream socket lives. IPv4, IPv6 (with scope id) or a Unix-domain socket (a path
// or a Linux abstract name). Text forms, accepted by parse() and produced by to_string():
//   127.0.0.1:8080    [::1]:8080    [fe80::1%eth0]:8080    unix:/run/app.sock    unix:@name
// A relative path that itself starts with '@' is written unix:./@file (parsed back to "@file";
// one "./" is added in front of, and taken from, any path that would otherwise read so).
// parse() accepts numeric addresses only; host names go through resolve().

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "orderly/core/result.hpp"

namespace orderly {

enum class address_family { none, ipv4, ipv6, unix_path, unix_abstract };

class endpoint {
  public:
    endpoint() noexcept;  // family none; to_string() is "(none)"

    // Parses one of the text forms above. Errors (errc::address_parse) name the offending part and
    // the expected form, e.g. "port '70000' in '1.2.3.4:70000' is out of range (0-65535)".
    static result<endpoint, error_info> parse(std::string_view text);

    // Builders that cannot fail on well-formed input.
    static endpoint ipv4_loopback(std::uint16_t port) noexcept;
    static endpoint ipv6_loopback(std::uint16_t port) noexcept;
    static endpoint ipv4_any(std::uint16_t port) noexcept;
    static endpoint ipv6_any(std::uint16_t port) noexcept;
    // A Unix path (errc::invalid_argument if it does not fit sun_path, 107 bytes + NUL).
    static result<endpoint, error_info> unix_path(std::string_view path);
    // A Linux abstract socket name (no leading '@', no NUL needed).
    static result<endpoint, error_info> unix_abstract(std::string_view name);
    // Copies a kernel-filled address; errc::invalid_argument for families other than
    // AF_INET/AF_INET6/AF_UNIX. An unnamed AF_UNIX address (len == sizeof(sa_family_t)) yields
    // unix_path with an empty path, printed "unix:(unnamed)".
    static result<endpoint> from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;

    [[nodiscard]] address_family family() const noexcept { return family_; }
    [[nodiscard]] bool is_ip() const noexcept {
        return family_ == address_family::ipv4 || family_ == address_family::ipv6;
    }
    [[nodiscard]] bool is_unix() const noexcept {
        return family_ == address_family::unix_path || family_ == address_family::unix_abstract;
    }
    // 0 for Unix endpoints.
    [[nodiscard]] std::uint16_t port() const noexcept;
    [[nodiscard]] endpoint with_port(std::uint16_t port) const noexcept;
    // "127.0.0.1", "::1", "fe80::1%eth0"; the path (or name) for Unix endpoints.
    [[nodiscard]] std::string host() const;
    // The canonical text form (round-trips through parse()).
    [[nodiscard]] std::string to_string() const;

    // For the socket calls: AF_* domain, sockaddr and its length.
    [[nodiscard]] int domain() const noexcept;
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    [[nodiscard]] socklen_t size() const noexcept { return len_; }

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

  private:
    sockaddr_storage storage_{};
    socklen_t len_ = 0;
    address_family family_ = address_family::none;
};

// The address a socket is bound to (getsockname) and the one it is connected to (getpeername).
// Errors: the errno of the call (ENOTCONN for a peer that is gone, EBADF, ENOTSOCK).
result<endpoint> local_endpoint_of(int fd) noexcept;
result<endpoint> peer_endpoint_of(int fd) noexcept;

// Splits "host:port", "[v6host]:port" into host and port text without validating either
// (errc::address_parse when the shape is wrong: no colon, unbalanced brackets, empty port).
struct host_port {
    std::string host;  // brackets removed
    std::string port;
};
result<host_port, error_info> split_host_port(std::string_view text);

}  // namespace orderly
