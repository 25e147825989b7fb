#pragma once
// The hosts file (hosts(5)), read directly. connect() asks it before starting the AAAA and A
// lookups: getaddrinfo for one family falls through to DNS when /etc/hosts names the host only
// under the other family, so a name pinned there (localhost as 127.0.0.1 alone, a test host)
// would otherwise be asked of DNS as well and could come back with an address the file meant to
// rule out. Go's resolver and c-ares read the file first for the same reason.

#include <string>
#include <string_view>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {

// Every address `path` gives `host` (names compare case-insensitively; '#' starts a comment),
// IPv6 before IPv4 and otherwise in file order, each with `port` (a number or a service name
// from /etc/services). Empty when the file does not name the host or cannot be read. Errors:
// only a bad port (errc::address_parse).
result<std::vector<endpoint>, error_info> hosts_file_lookup(std::string_view host,
                                                            std::string_view port,
                                                            const std::string& path = "/etc/hosts");

}  // namespace orderly
