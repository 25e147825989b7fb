#pragma once
// What a mistyped address most likely meant, for the messages of endpoint::parse(),
// split_host_port(), resolve() and listener::listen(). Internal to the library.

#include <optional>
#include <string>
#include <string_view>

namespace orderly::detail {

// "tcp://127.0.0.1:80", "http://host:80/x": the message saying to drop the scheme, or nullopt
// when `text` has none.
std::optional<std::string> scheme_hint(std::string_view text);

// "-1", "+80": a port with a sign (a service name never starts with one); the message, or nullopt.
std::optional<std::string> signed_port_hint(std::string_view port, std::string_view text);

// Digits and dots only, with at least one dot ("999.1.1.1", "10.0.0"): meant as an IPv4
// address, never a host name (no top-level domain is all digits), so it must not be looked up.
bool looks_dotted_numeric(std::string_view host) noexcept;

// Why bind() on a Unix path failed with EADDRINUSE: what is at `path` and what to do.
std::string unix_path_in_use_hint(const std::string& path);

}  // namespace orderly::detail
