#pragma once
// tls_context: the TLS configuration shared by many connections (an OpenSSL SSL_CTX). Built once,
// checked at build time: every error names the file and the reason (unreadable, not PEM, key does
// not match the certificate, expired). See docs/tls.md.

#include <memory>
#include <string>
#include <vector>

#include "orderly/core/result.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace orderly {

enum class tls_version { tls1_2, tls1_3 };

struct tls_client_config {
    // Trust anchors: a PEM file and/or a hashed directory; when both are empty, the system store.
    std::string ca_file;
    std::string ca_dir;
    // Turns OFF certificate and host name verification: anyone in the path can read and change
    // the traffic. For tests against throwaway certificates only.
    bool insecure_skip_verify = false;
    // Optional client certificate (both or neither).
    std::string cert_file;
    std::string key_file;
    std::vector<std::string> alpn;  // offered protocols, in preference order ("h2", "http/1.1")
    tls_version min_version = tls_version::tls1_2;
    tls_version max_version = tls_version::tls1_3;
};

struct tls_server_config {
    // The certificate chain (leaf first) and its key, PEM files. cert_pem/key_pem are used
    // instead when the file names are empty (e.g. from make_self_signed()).
    std::string cert_file;
    std::string key_file;
    std::string cert_pem;
    std::string key_pem;
    // Client certificates: verified against client_ca_file when set; required when asked.
    std::string client_ca_file;
    bool require_client_cert = false;
    std::vector<std::string> alpn;  // accepted protocols, in the server's preference order
    tls_version min_version = tls_version::tls1_2;
    tls_version max_version = tls_version::tls1_3;
};

class tls_context {
  public:
    enum class role { client, server };

    // Errors: errc::tls_config_error with a detail naming the file and the reason.
    static result<tls_context, error_info> client(const tls_client_config& cfg);
    static result<tls_context, error_info> server(const tls_server_config& cfg);

    [[nodiscard]] role side() const noexcept { return role_; }
    [[nodiscard]] bool verifies_peer() const noexcept { return verify_; }
    // The SSL_CTX, still owned here (for options this class does not cover).
    [[nodiscard]] ssl_ctx_st* native_handle() const noexcept { return ctx_.get(); }

  private:
    struct ctx_free {
        void operator()(ssl_ctx_st* c) const noexcept;
    };
    tls_context(ssl_ctx_st* c, role r, bool verify)
        : ctx_(c, ctx_free{}), role_(r), verify_(verify) {}
    std::shared_ptr<ssl_ctx_st> ctx_;
    role role_;
    bool verify_;
};

}  // namespace orderly
