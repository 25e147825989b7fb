#pragma once
// Name resolution over getaddrinfo(3). Blocks on DNS/hosts lookups; returns addresses in the order
// the system prefers (RFC 6724 as configured by gai.conf).

#include <string_view>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {

struct resolve_options {
    address_family family = address_family::none;  // none = both IPv4 and IPv6
    bool passive = false;                          // for listening: empty host means "any"
};

// Resolves host and service (a port number or a name from /etc/services) to stream endpoints.
// Duplicates are removed. Errors: errc::resolve with the host and getaddrinfo's reason
// ("cannot resolve 'nosuch.invalid': Name or service not known"), errc::address_parse for a bad
// port.
result<std::vector<endpoint>, error_info> resolve(std::string_view host, std::string_view service,
                                                  const resolve_options& opts = {});

// "host:port", "[v6]:port" or "unix:/path": a numeric form parses without any lookup, anything else
// resolves the host part.
result<std::vector<endpoint>, error_info> resolve(std::string_view host_and_port,
                                                  const resolve_options& opts = {});

}  // namespace orderly
