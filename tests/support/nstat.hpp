#pragma once
// Kernel TCP counters from /proc/net/netstat (what `nstat` shows), to tell *why* a RST was sent:
// TcpExt TCPAbortOnClose counts closes with unread data, TCPAbortOnData closes with zero linger
// or data arriving after close. The counters are per network namespace, so other processes on the
// machine can raise them too: assert lower bounds, not exact values.

#include <cstdint>
#include <optional>
#include <string_view>

namespace orderly::test {

// The current value of a TcpExt counter, or nullopt when the file or the name is missing.
std::optional<std::uint64_t> tcp_ext_counter(std::string_view name);

}  // namespace orderly::test
