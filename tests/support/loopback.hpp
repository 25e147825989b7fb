#pragma once
// Connected socket pairs over real loopback TCP (IPv4 or IPv6) or a Unix path, made with the
// library's own listener and connect so tests exercise the same code users run.

#include <string>

#include "orderly/net/listener.hpp"
#include "orderly/net/stream_socket.hpp"

namespace orderly::test {

enum class transport { tcp4, tcp6, unix_path };

struct socket_pair {
    stream_socket client;
    stream_socket server;
};

// Listens on port 0 (or a fresh temporary Unix path), connects, accepts. Fails the test (and
// returns an empty pair) when any step fails.
socket_pair make_pair(transport t = transport::tcp4);

// A listener on 127.0.0.1:0 / [::1]:0 / a temporary Unix path.
listener make_listener(transport t = transport::tcp4);

// A fresh path under the temp dir for a Unix socket (not created).
std::string temp_socket_path();

// Is IPv6 loopback usable here? (Some containers disable it.)
bool ipv6_available();

// Printable name for parameterised tests.
std::string to_string(transport t);

}  // namespace orderly::test
