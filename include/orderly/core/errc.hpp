#pragma once
// orderly's own error codes. System failures keep their errno in std::system_category();
// these codes name what the library itself decides (a deadline passed, an address did not parse).

#include <string>
#include <system_error>

namespace orderly {

enum class errc {
    // 0 is reserved for "no error" as std::error_code expects.
    timed_out = 1,      // a deadline passed before the operation finished
    peer_reset,         // the peer sent RST (ECONNRESET/EPIPE seen on this socket)
    drain_limit,        // the peer kept sending after our FIN for more than the drain cap
    address_parse,      // text could not be parsed as an endpoint
    resolve,            // name resolution failed
    not_open,           // the socket has no descriptor (closed, moved-from or never opened)
    read_shut,          // reading was shut down on this socket
    write_shut,         // writing was shut down on this socket
    invalid_argument,   // an argument is outside what the call accepts
    aborted,            // the connection was aborted locally (SO_LINGER{1,0})
    connection_closed,  // the connection is gone (both directions finished)
    // Our kernel reset the connection: the peer's bytes arrived after we shut down reading and
    // sent FIN, and Linux answers those with RST (RFC 1122) instead of queueing them.
    reset_after_shut_read,
    // TLS (the orderly::tls layer; see docs/tls.md).
    tls_handshake_failed,  // the TLS handshake failed (the detail names OpenSSL's reason)
    tls_verify_failed,     // the peer's certificate chain or name did not verify
    tls_truncated,         // the peer ended TCP without close_notify: the data may be truncated
    tls_protocol_error,    // a TLS record or alert broke the protocol after the handshake
    tls_config_error,      // a TLS context could not be built (the detail names file and reason)
    tls_not_established,   // the call needs a completed handshake
};

// The category of orderly::errc; its name is "orderly".
const std::error_category& orderly_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), orderly_category()};
}

// An errno value as a std::error_code in the system category.
inline std::error_code errno_code(int err) noexcept {
    return {err, std::system_category()};
}

}  // namespace orderly

template <>
struct std::is_error_code_enum<orderly::errc> : std::true_type {};
