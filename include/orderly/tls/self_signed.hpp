#pragma once
// make_self_signed: a throwaway certificate and key for tests and demos, made with OpenSSL's X509
// API (no `openssl` command). Never for production: nothing vouches for it but itself.

#include <chrono>
#include <string>
#include <vector>

#include "orderly/core/result.hpp"

namespace orderly {

struct self_signed_options {
    // Subject alternative names: host names become DNS SANs, IPv4/IPv6 literals IP SANs. The
    // first one is also the subject's common name.
    std::vector<std::string> names{"localhost", "127.0.0.1", "::1"};
    // Validity relative to now; a negative valid_until makes an already-expired certificate
    // (for tests of the expiry checks).
    std::chrono::seconds valid_from = -std::chrono::hours(1);
    std::chrono::seconds valid_until = std::chrono::hours(24 * 30);
};

struct self_signed_pem {
    std::string cert;  // "-----BEGIN CERTIFICATE-----..."
    std::string key;   // "-----BEGIN PRIVATE KEY-----..." (EC P-256, unencrypted)
};

// Errors: errc::invalid_argument (no names, an empty name), errc::tls_config_error (OpenSSL
// failed; the detail says where).
result<self_signed_pem, error_info> make_self_signed(const self_signed_options& opts = {});

// Writes `pem` to `path` (mode 0600 for keys is the caller's business; this writes 0644 for the
// certificate and 0600 for anything holding "PRIVATE KEY"). Errors name the file and errno.
result<void, error_info> write_pem_file(const std::string& path, const std::string& pem);

}  // namespace orderly
