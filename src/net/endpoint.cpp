#include "orderly/net/endpoint.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "address_hints.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

constexpr std::string_view unix_prefix = "unix:";
// sun_path holds 108 bytes; a path needs its terminating NUL, an abstract name its leading NUL.
constexpr std::size_t max_unix_bytes = sizeof(sockaddr_un::sun_path) - 1;
constexpr socklen_t unix_header = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

failure<error_info> parse_error(std::string detail) {
    return fail(make_error_code(errc::address_parse), std::move(detail));
}

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

// Decimal digits only: strtoul and friends would accept signs, spaces and hex, which in an address
// almost always means a typo rather than intent.
result<std::uint16_t, error_info> parse_port(std::string_view port, std::string_view text) {
    if (port.empty()) {
        return parse_error("missing port in " + quoted(text) + ": expected HOST:PORT");
    }
    if (!all_digits(port)) {
        return parse_error("port " + quoted(port) + " in " + quoted(text) +
                           " is not a number: expected decimal digits (0-65535)");
    }
    if (port.size() > 5) {
        return parse_error("port " + quoted(port) + " in " + quoted(text) +
                           " has more than 5 digits (0-65535)");
    }
    unsigned value = 0;
    for (char c : port)
        value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) {
        return parse_error("port " + quoted(port) + " in " + quoted(text) +
                           " is out of range (0-65535)");
    }
    return static_cast<std::uint16_t>(value);
}

// The scope of a link-local address: an interface number, or a name that exists now.
result<std::uint32_t, error_info> parse_scope(std::string_view scope, std::string_view text) {
    if (scope.empty()) {
        return parse_error("empty scope id after '%' in " + quoted(text) +
                           ": expected an interface name or number, e.g. [fe80::1%eth0]:80");
    }
    if (all_digits(scope)) {
        if (scope.size() > 10) {
            return parse_error("scope id " + quoted(scope) + " in " + quoted(text) +
                               " is out of range (0-4294967295)");
        }
        std::uint64_t value = 0;
        for (char c : scope)
            value = value * 10 + static_cast<std::uint64_t>(c - '0');
        if (value > 0xffffffffULL) {
            return parse_error("scope id " + quoted(scope) + " in " + quoted(text) +
                               " is out of range (0-4294967295)");
        }
        return static_cast<std::uint32_t>(value);
    }
    if (scope.size() >= IF_NAMESIZE) {
        return parse_error("interface name " + quoted(scope) + " in " + quoted(text) +
                           " is longer than " + std::to_string(IF_NAMESIZE - 1) + " bytes");
    }
    const std::string name(scope);
    const unsigned index = ::if_nametoindex(name.c_str());
    if (index == 0) {
        return parse_error("unknown interface " + quoted(scope) + " in scope id of " +
                           quoted(text) + ": expected an existing interface name or a number");
    }
    return static_cast<std::uint32_t>(index);
}

// Where a host part went wrong, said as specifically as we can.
failure<error_info> bad_ipv4_host(std::string_view host, std::string_view text) {
    if (host.empty()) {
        return parse_error("missing host in " + quoted(text) + ": expected HOST:PORT");
    }
    bool looks_numeric = true;
    for (char c : host) {
        if ((c < '0' || c > '9') && c != '.') looks_numeric = false;
    }
    if (looks_numeric) {
        return parse_error(quoted(host) + " in " + quoted(text) +
                           " is not a valid IPv4 address: expected four numbers 0-255 "
                           "without leading zeros, e.g. 127.0.0.1");
    }
    return parse_error(quoted(host) + " in " + quoted(text) +
                       " is not a numeric address: expected an IPv4 address like 127.0.0.1 or "
                       "[IPv6] (host names need resolve())");
}

bool is_ipv6_text(std::string_view s) {
    in6_addr probe{};
    const std::string addr(s.substr(0, s.find('%')));
    return ::inet_pton(AF_INET6, addr.c_str(), &probe) == 1;
}

// Text with two or more colons and no brackets: most likely a bare IPv6 address. "::1:80" is itself
// a valid IPv6 address, but someone who typed it almost surely meant [::1]:80, so a trailing
// ":digits" is read as the port first.
failure<error_info> unbracketed_ipv6(std::string_view text) {
    const auto colon = text.rfind(':');
    const std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    if (all_digits(port) && is_ipv6_text(host)) {
        return parse_error("IPv6 address must be in brackets: " + quoted(text) + " (write [" +
                           std::string(host) + "]:" + std::string(port) + ")");
    }
    if (is_ipv6_text(text)) {
        return parse_error("IPv6 address must be in brackets and have a port: " + quoted(text) +
                           " (write [" + std::string(text) + "]:PORT)");
    }
    return parse_error("IPv6 address must be in brackets: " + quoted(text) +
                       " (expected [ADDRESS]:PORT)");
}

struct split_parts {
    std::string_view host;
    std::string_view port;
    bool bracketed = false;
};

result<split_parts, error_info> split_brackets(std::string_view text);

// The shape shared by split_host_port() and parse(): brackets balanced, one port after the last
// colon. Values are not checked here.
result<split_parts, error_info> split_shape(std::string_view text) {
    if (text.empty()) {
        return parse_error("address is empty: expected HOST:PORT, [IPv6]:PORT or unix:/path");
    }
    // inet_pton, if_nametoindex and getaddrinfo would stop at a NUL and accept what precedes it.
    if (text.find('\0') != std::string_view::npos) {
        return parse_error("address contains a NUL byte: expected HOST:PORT or [IPv6]:PORT");
    }
    if (auto hint = detail::scheme_hint(text)) return parse_error(std::move(*hint));
    auto parts = split_brackets(text);
    if (!parts) return parts;
    if (auto hint = detail::signed_port_hint(parts->port, text)) {
        return parse_error(std::move(*hint));
    }
    // "999.1.1.1" is a mistyped IPv4 address, not a name: no lookup, a usage error.
    in_addr v4{};
    const std::string host(parts->host);
    if (!parts->bracketed && detail::looks_dotted_numeric(host) &&
        ::inet_pton(AF_INET, host.c_str(), &v4) != 1) {
        return bad_ipv4_host(parts->host, text);
    }
    return parts;
}

// split_shape() without the checks for likely typos.
result<split_parts, error_info> split_brackets(std::string_view text) {
    split_parts parts;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            return parse_error(quoted(text) + " has no closing ']'");
        }
        parts.host = text.substr(1, close - 1);
        parts.bracketed = true;
        const std::string_view rest = text.substr(close + 1);
        if (parts.host.find('[') != std::string_view::npos) {
            return parse_error("unexpected '[' inside brackets in " + quoted(text));
        }
        if (rest.empty()) {
            return parse_error("missing port in " + quoted(text) + ": expected [" +
                               std::string(parts.host) + "]:PORT");
        }
        if (rest.front() != ':') {
            return parse_error("unexpected " + quoted(rest) + " after ']' in " + quoted(text) +
                               ": expected [" + std::string(parts.host) + "]:PORT");
        }
        parts.port = rest.substr(1);
        if (parts.port.empty()) {
            return parse_error("missing port in " + quoted(text) + ": expected [" +
                               std::string(parts.host) + "]:PORT");
        }
        return parts;
    }
    if (text.find('[') != std::string_view::npos) {
        return parse_error("'[' must start the address in " + quoted(text) +
                           ": expected [IPv6]:PORT");
    }
    if (text.find(']') != std::string_view::npos) {
        return parse_error("unbalanced ']' in " + quoted(text) + ": expected [IPv6]:PORT");
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return parse_error("missing port in " + quoted(text) + ": expected HOST:PORT");
    }
    if (text.find(':') != colon) return unbracketed_ipv6(text);
    parts.host = text.substr(0, colon);
    parts.port = text.substr(colon + 1);
    if (parts.port.empty()) {
        return parse_error("missing port in " + quoted(text) + ": expected HOST:PORT");
    }
    return parts;
}

// A path of the form "@x", "./@x", "././@x"...: written after "unix:" as it is, the first would
// read as an abstract name, and the others would lose their escape when parsed. to_string()
// puts one more "./" in front of such a path, and parse() takes exactly one away, so every path
// prints to a text that parses back to the same bytes.
bool reads_as_abstract(std::string_view path) noexcept {
    while (path.substr(0, 2) == "./")
        path.remove_prefix(2);
    return !path.empty() && path.front() == '@';
}

}  // namespace

endpoint::endpoint() noexcept = default;

endpoint endpoint::ipv4_loopback(std::uint16_t port) noexcept {
    endpoint e = ipv4_any(port);
    reinterpret_cast<sockaddr_in*>(&e.storage_)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return e;
}

endpoint endpoint::ipv4_any(std::uint16_t port) noexcept {
    endpoint e;
    auto* sin = reinterpret_cast<sockaddr_in*>(&e.storage_);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    e.len_ = sizeof(sockaddr_in);
    e.family_ = address_family::ipv4;
    return e;
}

endpoint endpoint::ipv6_loopback(std::uint16_t port) noexcept {
    endpoint e = ipv6_any(port);
    reinterpret_cast<sockaddr_in6*>(&e.storage_)->sin6_addr = in6addr_loopback;
    return e;
}

endpoint endpoint::ipv6_any(std::uint16_t port) noexcept {
    endpoint e;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&e.storage_);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_any;
    e.len_ = sizeof(sockaddr_in6);
    e.family_ = address_family::ipv6;
    return e;
}

result<endpoint, error_info> endpoint::unix_path(std::string_view path) {
    const auto err = make_error_code(errc::invalid_argument);
    if (path.empty()) return fail(err, "unix path is empty");
    if (path.find('\0') != std::string_view::npos) {
        return fail(err, "unix path contains a NUL byte");
    }
    if (path.size() > max_unix_bytes) {
        return fail(err, "unix path is " + std::to_string(path.size()) +
                             " bytes, longer than the " + std::to_string(max_unix_bytes) +
                             " the kernel accepts");
    }
    endpoint e;
    auto* sun = reinterpret_cast<sockaddr_un*>(&e.storage_);
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), path.size());
    // Counting the NUL matches what getsockname() reports for the same socket.
    e.len_ = unix_header + static_cast<socklen_t>(path.size()) + 1;
    e.family_ = address_family::unix_path;
    return e;
}

result<endpoint, error_info> endpoint::unix_abstract(std::string_view name) {
    const auto err = make_error_code(errc::invalid_argument);
    if (name.empty()) return fail(err, "unix abstract name is empty");
    if (name.size() > max_unix_bytes) {
        return fail(err, "unix abstract name is " + std::to_string(name.size()) +
                             " bytes, longer than the " + std::to_string(max_unix_bytes) +
                             " the kernel accepts");
    }
    endpoint e;
    auto* sun = reinterpret_cast<sockaddr_un*>(&e.storage_);
    sun->sun_family = AF_UNIX;
    sun->sun_path[0] = '\0';
    std::memcpy(sun->sun_path + 1, name.data(), name.size());
    // The length is part of an abstract name: no terminator, no padding.
    e.len_ = unix_header + 1 + static_cast<socklen_t>(name.size());
    e.family_ = address_family::unix_abstract;
    return e;
}

result<endpoint> endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
    const auto bad = make_error_code(errc::invalid_argument);
    if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) return fail(bad);
    endpoint e;
    switch (sa->sa_family) {
        case AF_INET:
            if (len < static_cast<socklen_t>(sizeof(sockaddr_in))) return fail(bad);
            std::memcpy(&e.storage_, sa, sizeof(sockaddr_in));
            e.len_ = sizeof(sockaddr_in);
            e.family_ = address_family::ipv4;
            return e;
        case AF_INET6:
            if (len < static_cast<socklen_t>(sizeof(sockaddr_in6))) return fail(bad);
            std::memcpy(&e.storage_, sa, sizeof(sockaddr_in6));
            e.len_ = sizeof(sockaddr_in6);
            e.family_ = address_family::ipv6;
            return e;
        case AF_UNIX: {
            // The kernel may report more than it wrote into a short buffer; never read past ours.
            if (len > static_cast<socklen_t>(sizeof(sockaddr_un))) len = sizeof(sockaddr_un);
            auto* sun = reinterpret_cast<sockaddr_un*>(&e.storage_);
            sun->sun_family = AF_UNIX;
            e.family_ = address_family::unix_path;
            if (len <= unix_header) {
                e.len_ = sizeof(sa_family_t);  // unnamed (socketpair, unbound client)
                return e;
            }
            const auto* src = reinterpret_cast<const sockaddr_un*>(sa);
            const std::size_t avail = len - unix_header;
            if (src->sun_path[0] == '\0') {
                std::memcpy(sun->sun_path, src->sun_path, avail);
                e.len_ = len;
                e.family_ = address_family::unix_abstract;
                return e;
            }
            // Paths may or may not include their NUL in `len`; normalise to "with NUL".
            const std::size_t n = ::strnlen(src->sun_path, avail);
            const std::size_t kept = n < max_unix_bytes ? n : max_unix_bytes;
            std::memcpy(sun->sun_path, src->sun_path, kept);
            e.len_ = unix_header + static_cast<socklen_t>(kept) + 1;
            return e;
        }
        default:
            return fail(bad);
    }
}

result<endpoint, error_info> endpoint::parse(std::string_view text) {
    if (text.substr(0, unix_prefix.size()) == unix_prefix) {
        const std::string_view rest = text.substr(unix_prefix.size());
        // A leading "./" before a path that reads like an abstract name is the escape that
        // to_string() adds (see reads_as_abstract): drop it, the file is the same.
        const bool escaped = rest.substr(0, 2) == "./" && reads_as_abstract(rest.substr(2));
        auto made = !rest.empty() && rest.front() == '@' ? unix_abstract(rest.substr(1))
                    : escaped                            ? unix_path(rest.substr(2))
                                                         : unix_path(rest);
        if (!made) return parse_error(made.error().detail);
        return made;
    }
    auto parts = split_shape(text);
    if (!parts) return failure{parts.error()};
    auto port = parse_port(parts->port, text);
    if (!port) return failure{port.error()};

    if (!parts->bracketed) {
        in_addr addr{};
        const std::string host(parts->host);
        if (host.empty() || ::inet_pton(AF_INET, host.c_str(), &addr) != 1) {
            return bad_ipv4_host(parts->host, text);
        }
        endpoint e = ipv4_any(*port);
        reinterpret_cast<sockaddr_in*>(&e.storage_)->sin_addr = addr;
        return e;
    }

    const std::string_view inside = parts->host;
    const auto percent = inside.find('%');
    const std::string addr_text(inside.substr(0, percent));
    if (addr_text.empty()) {
        return parse_error("empty IPv6 address in brackets in " + quoted(text) +
                           ": expected [IPv6]:PORT, e.g. [::1]:80");
    }
    in6_addr addr{};
    if (::inet_pton(AF_INET6, addr_text.c_str(), &addr) != 1) {
        in_addr v4{};
        if (::inet_pton(AF_INET, addr_text.c_str(), &v4) == 1) {
            return parse_error("IPv4 address " + quoted(addr_text) + " in brackets in " +
                               quoted(text) + " (write " + addr_text + ":" +
                               std::string(parts->port) + ")");
        }
        return parse_error(quoted(addr_text) + " in " + quoted(text) +
                           " is not a valid IPv6 address: expected e.g. [::1]:80");
    }
    std::uint32_t scope = 0;
    if (percent != std::string_view::npos) {
        auto s = parse_scope(inside.substr(percent + 1), text);
        if (!s) return failure{s.error()};
        scope = *s;
    }
    endpoint e = ipv6_any(*port);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&e.storage_);
    sin6->sin6_addr = addr;
    sin6->sin6_scope_id = scope;
    return e;
}

std::uint16_t endpoint::port() const noexcept {
    switch (family_) {
        case address_family::ipv4:
            return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
        case address_family::ipv6:
            return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
        default:
            return 0;
    }
}

endpoint endpoint::with_port(std::uint16_t port) const noexcept {
    endpoint e = *this;
    if (family_ == address_family::ipv4) {
        reinterpret_cast<sockaddr_in*>(&e.storage_)->sin_port = htons(port);
    } else if (family_ == address_family::ipv6) {
        reinterpret_cast<sockaddr_in6*>(&e.storage_)->sin6_port = htons(port);
    }
    return e;
}

std::string endpoint::host() const {
    switch (family_) {
        case address_family::none:
            return {};
        case address_family::ipv4: {
            char buf[INET_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                        sizeof buf);
            return buf;
        }
        case address_family::ipv6: {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
            char buf[INET6_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
            std::string out = buf;
            if (sin6->sin6_scope_id != 0) {
                // A name reads better and survives renumbering; fall back to the number when the
                // interface is gone (parse() accepts both).
                char name[IF_NAMESIZE] = {};
                out += '%';
                if (::if_indextoname(sin6->sin6_scope_id, name) != nullptr) {
                    out += name;
                } else {
                    out += std::to_string(sin6->sin6_scope_id);
                }
            }
            return out;
        }
        case address_family::unix_path: {
            if (len_ <= unix_header) return {};
            const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
            return {sun->sun_path, ::strnlen(sun->sun_path, len_ - unix_header)};
        }
        case address_family::unix_abstract: {
            const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
            return {sun->sun_path + 1, static_cast<std::size_t>(len_ - unix_header - 1)};
        }
    }
    return {};
}

std::string endpoint::to_string() const {
    switch (family_) {
        case address_family::none:
            return "(none)";
        case address_family::ipv4:
            return host() + ":" + std::to_string(port());
        case address_family::ipv6:
            return "[" + host() + "]:" + std::to_string(port());
        case address_family::unix_path: {
            std::string path = host();
            if (path.empty()) return "unix:(unnamed)";
            return (reads_as_abstract(path) ? "unix:./" : "unix:") + path;
        }
        case address_family::unix_abstract:
            return "unix:@" + host();
    }
    return "(none)";
}

int endpoint::domain() const noexcept {
    switch (family_) {
        case address_family::ipv4:
            return AF_INET;
        case address_family::ipv6:
            return AF_INET6;
        case address_family::unix_path:
        case address_family::unix_abstract:
            return AF_UNIX;
        case address_family::none:
            break;
    }
    return AF_UNSPEC;
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
    if (a.family_ != b.family_) return false;
    switch (a.family_) {
        case address_family::none:
            return true;
        case address_family::ipv4: {
            const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
            const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
            return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        case address_family::ipv6: {
            // Flow labels are per-packet hints, not part of where the socket is.
            const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
            const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
            return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
                   std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
        }
        case address_family::unix_path:
        case address_family::unix_abstract: {
            if (a.len_ != b.len_) return false;
            if (a.len_ <= unix_header) return true;
            const auto* x = reinterpret_cast<const sockaddr_un*>(&a.storage_);
            const auto* y = reinterpret_cast<const sockaddr_un*>(&b.storage_);
            return std::memcmp(x->sun_path, y->sun_path, a.len_ - unix_header) == 0;
        }
    }
    return false;
}

result<host_port, error_info> split_host_port(std::string_view text) {
    auto parts = split_shape(text);
    if (!parts) return failure{parts.error()};
    return host_port{std::string(parts->host), std::string(parts->port)};
}

namespace {

template <class Call>
result<endpoint> socket_address(int fd, Call call) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (call(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fail(errno_code(errno));
    return endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace

result<endpoint> local_endpoint_of(int fd) noexcept {
    return socket_address(fd, ::getsockname);
}
result<endpoint> peer_endpoint_of(int fd) noexcept {
    return socket_address(fd, ::getpeername);
}

}  // namespace orderly
