#include "orderly/net/resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "address_hints.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

bool all_digits(std::string_view s) noexcept {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int to_ai_family(address_family f) noexcept {
    switch (f) {
        case address_family::ipv4:
            return AF_INET;
        case address_family::ipv6:
            return AF_INET6;
        default:
            return AF_UNSPEC;
    }
}

const char* family_word(address_family f) noexcept {
    switch (f) {
        case address_family::ipv4:
            return "IPv4";
        case address_family::ipv6:
            return "IPv6";
        case address_family::unix_path:
        case address_family::unix_abstract:
            return "Unix";
        case address_family::none:
            break;
    }
    return "any";
}

bool family_matches(const endpoint& e, address_family wanted) noexcept {
    if (wanted == address_family::none) return true;
    if (e.is_unix()) {
        return wanted == address_family::unix_path || wanted == address_family::unix_abstract;
    }
    return e.family() == wanted;
}

result<std::vector<endpoint>, error_info> one_numeric(endpoint e, std::string_view text,
                                                      const resolve_options& opts) {
    if (!family_matches(e, opts.family)) {
        return fail(make_error_code(errc::resolve),
                    "address family of " + quoted(text) + " is " + family_word(e.family()) +
                        ", but " + family_word(opts.family) + " was asked for");
    }
    return std::vector<endpoint>{e};
}

std::optional<error_info> check_port(std::string_view port, std::string_view host) {
    const auto err = make_error_code(errc::address_parse);
    if (port.size() > 5) {
        return error_info{err, "port " + quoted(port) + " for " + quoted(host) +
                                   " has more than 5 digits (0-65535)"};
    }
    unsigned value = 0;
    for (char c : port)
        value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) {
        return error_info{
            err, "port " + quoted(port) + " for " + quoted(host) + " is out of range (0-65535)"};
    }
    return std::nullopt;
}

bool looks_like_ip(std::string_view host) {
    const std::string addr(host.substr(0, host.find('%')));
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, addr.c_str(), buf) == 1 ||
           ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

struct addrinfo_deleter {
    void operator()(addrinfo* ai) const noexcept { ::freeaddrinfo(ai); }
};

}  // namespace

result<std::vector<endpoint>, error_info> resolve(std::string_view host, std::string_view service,
                                                  const resolve_options& opts) {
    if (service.empty()) {
        return fail(make_error_code(errc::address_parse), "missing port for " + quoted(host) +
                                                              ": expected a number 0-65535 or a "
                                                              "service name");
    }
    // A numeric port is checked with the same rules as endpoint::parse(), so that "70000" is an
    // address_parse error rather than getaddrinfo's vaguer "Servname not supported".
    const bool numeric_port = all_digits(service);
    if (numeric_port) {
        if (auto bad = check_port(service, host)) return failure{std::move(*bad)};
        if (!host.empty()) {
            const bool v6 = host.find(':') != std::string_view::npos;
            const std::string text = (v6 ? "[" + std::string(host) + "]" : std::string(host)) +
                                     ":" + std::string(service);
            auto numeric = endpoint::parse(text);
            if (numeric) return one_numeric(*numeric, host, opts);
            // A numeric address with a bad scope id must not fall through to a DNS lookup.
            if (looks_like_ip(host) || detail::looks_dotted_numeric(host)) {
                return failure{numeric.error()};
            }
        }
    }

    addrinfo hints{};
    hints.ai_family = to_ai_family(opts.family);
    hints.ai_socktype = SOCK_STREAM;
    // No AI_ADDRCONFIG: it only counts non-loopback addresses, so on a host (container, CI runner)
    // whose only IPv6 address is ::1 it hides ::1 for "localhost", and with no non-loopback
    // address at all it hides everything. An address that later fails to connect costs one
    // attempt; an address that is silently missing cannot be diagnosed.
    hints.ai_flags = (opts.passive ? AI_PASSIVE : 0) | (numeric_port ? AI_NUMERICSERV : 0);

    const std::string node(host);
    const std::string serv(service);
    addrinfo* raw = nullptr;
    const int rc = ::getaddrinfo(node.empty() ? nullptr : node.c_str(), serv.c_str(), &hints, &raw);
    std::unique_ptr<addrinfo, addrinfo_deleter> list(raw);
    if (rc != 0) {
        const int saved_errno = errno;
        const std::string reason =
            rc == EAI_SYSTEM ? errno_code(saved_errno).message() : ::gai_strerror(rc);
        if (rc == EAI_SERVICE) {
            return fail(make_error_code(errc::address_parse),
                        "unknown service " + quoted(service) + " for " + quoted(host) + ": " +
                            reason +
                            " (expected a port number 0-65535 or a name from "
                            "/etc/services)");
        }
        return fail(make_error_code(errc::resolve),
                    "cannot resolve " + quoted(host) + ": " + reason);
    }

    std::vector<endpoint> out;
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
        auto e = endpoint::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
        if (!e || !family_matches(*e, opts.family)) continue;
        // getaddrinfo repeats an address once per matching /etc/hosts line and per protocol;
        // the order is the system's preference, so keep the first of each.
        if (std::find(out.begin(), out.end(), *e) == out.end()) out.push_back(*e);
    }
    if (out.empty()) {
        return fail(make_error_code(errc::resolve), "cannot resolve " + quoted(host) + ": no " +
                                                        family_word(opts.family) +
                                                        " stream address");
    }
    return out;
}

result<std::vector<endpoint>, error_info> resolve(std::string_view host_and_port,
                                                  const resolve_options& opts) {
    if (host_and_port.rfind("unix:", 0) == 0) {
        auto e = endpoint::parse(host_and_port);
        if (!e) return failure{e.error()};
        return one_numeric(*e, host_and_port, opts);
    }
    auto parts = split_host_port(host_and_port);
    if (!parts) return failure{parts.error()};
    return resolve(parts->host, parts->port, opts);
}

}  // namespace orderly
