#pragma once
// Python-like helpers: socket.create_connection() and socket.create_server() in C++.

#include <string_view>

#include "orderly/core/result.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/stream_socket.hpp"

namespace orderly {

// Resolves "host:port" / "[v6]:port" / "unix:/path" and tries every address in order until one
// connects; `timeout` bounds each attempt. The error names the text and the last reason
// ("connect to localhost:1 (127.0.0.1:1): Connection refused").
result<stream_socket, error_info> connect(std::string_view where,
                                          clock::duration timeout = std::chrono::seconds(30));

// Resolves (passively: "" or "*" as host means any address) and listens on the first address
// that binds. "localhost:0" binds an ephemeral port on loopback. For a dual-stack "[::]:port"
// that takes IPv4 clients too, set opts.v6_only = false.
result<listener, error_info> listen(std::string_view where, const listen_options& opts = {});

}  // namespace orderly
