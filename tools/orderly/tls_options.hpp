#pragma once
// The server-side --tls-* options, as listen and serve share them: the flags, their help, and the
// checked tls_context (a certificate or key that cannot be used is a usage error naming both
// files).

#include <optional>
#include <string>
#include <vector>

#include "orderly/tls/tls_context.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace orderly::cli {

struct tls_server_flags {
    std::string cert;  // --tls-cert FILE
    std::string key;   // --tls-key FILE
    std::string alpn;  // --tls-alpn LIST
    [[nodiscard]] bool given() const noexcept { return !cert.empty() || !key.empty(); }
};

// Adds --tls-cert, --tls-key and --tls-alpn to `sub`.
void add_tls_server_options(CLI::App& sub, tls_server_flags& flags);

// The server context, built before listening. nullopt with `code` exit_ok when no --tls-cert or
// --tls-key was given (plain TCP); nullopt with `code` set after printing the error (only one of
// the two given, a file that cannot be read, is not PEM, or a key that does not match its
// certificate: exit_usage, both file names in the message).
struct tls_server_setup {
    std::optional<tls_context> ctx;
    int code = 0;
};
tls_server_setup make_tls_server_context(const tls_server_flags& flags);

// "h2,http/1.1" -> {"h2", "http/1.1"}; empty items are skipped.
std::vector<std::string> split_list(const std::string& text);

}  // namespace orderly::cli
