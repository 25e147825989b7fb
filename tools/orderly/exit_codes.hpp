#pragma once
// The exit codes of every subcommand. Scripts branch on them, so they are part of the interface:
// change them only together with docs/cli.md and the help text.

#include <system_error>

#include "orderly/core/error_info.hpp"

namespace orderly::cli {

enum exit_code : int {
    exit_ok = 0,             // both directions ended in order
    exit_failure = 1,        // any other runtime error
    exit_usage = 2,          // bad option or address; the message names the bad part
    exit_unreachable = 3,    // refused, unreachable, or the name did not resolve
    exit_reset = 4,          // the peer reset the connection
    exit_timed_out = 5,      // a timeout or deadline passed
    exit_tls_truncated = 6,  // TLS: the peer ended TCP without close_notify (data may be cut)
    exit_tls_failed = 7,     // TLS: the handshake or certificate verification failed
    exit_findings = 8,       // orderly doctor reported findings
};

// The exit code an error deserves (for example ECONNREFUSED -> exit_unreachable).
exit_code exit_code_for(const std::error_code& ec) noexcept;

// The text shown in every --help footer.
inline constexpr const char* exit_codes_help =
    "Exit codes:\n"
    "  0  both directions ended in order (doctor: no findings)\n"
    "  1  other runtime error (also: --on-stdin-eof close reset the peer, reply unread)\n"
    "  2  usage error (bad option or address; the message names the bad part)\n"
    "  3  connection refused, network unreachable, or name not resolved\n"
    "  4  connection reset by peer\n"
    "  5  timed out (--timeout, --idle-timeout, --deadline or --accept-timeout)\n"
    "  6  TLS: the peer ended TCP without close_notify (the data may be truncated)\n"
    "  7  TLS: handshake or certificate verification failed (the message says why)\n"
    "  8  orderly doctor reported findings\n";

}  // namespace orderly::cli
