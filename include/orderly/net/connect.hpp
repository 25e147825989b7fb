#pragma once
// Python-like helpers: socket.create_connection() and socket.create_server() in C++.

#include <span>
#include <string_view>

#include "orderly/core/result.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/eyeballs.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/stream_socket.hpp"

namespace orderly {

// Connects to "host:port", "[v6]:port" or "unix:/path" with Happy Eyeballs (RFC 8305, see
// eyeballs.hpp): a literal needs no lookup, a name in /etc/hosts is taken from there, any other
// name is looked up for AAAA and A at once (each getaddrinfo on a thread of its own, see
// docs/guide.md); the addresses race with opts.attempt_delay between starts, the first to
// connect wins and the others are closed at once.
// Blocks up to opts.timeout in total. The error names every address tried with its own reason
// ("connect to localhost:8080: [::1]:8080: timed out; 127.0.0.1:8080: connection refused");
// codes: ECONNREFUSED (any address refused), errc::timed_out, errc::resolve, errc::address_parse,
// errc::invalid_argument (options out of range), or the first address's errno. `report`, when
// given, is filled either way: which address won after how long, every attempt.
result<stream_socket, error_info> connect(std::string_view where, const connect_options& opts = {},
                                          connect_report* report = nullptr);
// The same with the defaults and `timeout` for the whole connect.
result<stream_socket, error_info> connect(std::string_view where, clock::duration timeout);
// Races the given addresses (interleaved by family, the first address's family first); no
// lookup. An empty list is errc::invalid_argument.
result<stream_socket, error_info> connect(std::span<const endpoint> to,
                                          const connect_options& opts = {},
                                          connect_report* report = nullptr);

// Resolves (passively: "" or "*" as host means any address) and listens on the first address
// that binds. "localhost:0" binds an ephemeral port on loopback. For a dual-stack "[::]:port"
// that takes IPv4 clients too, set opts.v6_only = false.
result<listener, error_info> listen(std::string_view where, const listen_options& opts = {});

}  // namespace orderly
