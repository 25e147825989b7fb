#include "orderly/tls/tls_context.hpp"

#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "openssl_util.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

using tls_detail::bio_ptr;
using tls_detail::openssl_reason;

failure<error_info> config_error(std::string what) {
    ERR_clear_error();
    return fail(make_error_code(errc::tls_config_error), std::move(what));
}

int version_of(tls_version v) {
    return v == tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// The whole file, or an error naming it and errno's reason.
result<std::string, error_info> read_file(const std::string& path, const char* role) {
    std::FILE* f = std::fopen(path.c_str(), "rbe");
    if (f == nullptr) {
        const int err = errno;
        return config_error(std::string(role) + " " + path + ": unreadable: " + std::strerror(err));
    }
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) return config_error(std::string(role) + " " + path + ": unreadable: read error");
    return out;
}

// The expiry check every loaded certificate gets: an expired or not-yet-valid certificate is a
// configuration error now rather than a handshake failure for every client later.
result<void, error_info> check_dates(X509* x, const std::string& name) {
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        bio_ptr b(BIO_new(BIO_s_mem()));
        ASN1_TIME_print(b.get(), X509_get0_notAfter(x));
        char* d = nullptr;
        const long len = BIO_get_mem_data(b.get(), &d);
        return config_error("certificate " + name + ": expired (not valid after " +
                            std::string(d, static_cast<std::size_t>(len)) + ")");
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        return config_error("certificate " + name + ": not valid yet (check the clock)");
    }
    return {};
}

// Loads a chain (leaf first) and its key into `ctx`.
result<void, error_info> load_pair(SSL_CTX* ctx, const std::string& cert_pem,
                                   const std::string& cert_name, const std::string& key_pem,
                                   const std::string& key_name) {
    bio_ptr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    X509* leaf = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
    if (leaf == nullptr) {
        return config_error("certificate " + cert_name +
                            ": not PEM (no readable \"BEGIN CERTIFICATE\" block)");
    }
    if (auto d = check_dates(leaf, cert_name); !d) {
        X509_free(leaf);
        return d;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        X509_free(leaf);
        return config_error("certificate " + cert_name + ": rejected: " + openssl_reason());
    }
    X509_free(leaf);
    SSL_CTX_clear_chain_certs(ctx);
    while (X509* extra = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            return config_error("certificate " + cert_name + ": chain: " + openssl_reason());
        }
    }
    ERR_clear_error();  // the loop ends on "no start line"
    bio_ptr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) {
        return config_error("key " + key_name +
                            ": not PEM (no readable unencrypted \"BEGIN PRIVATE KEY\" block)");
    }
    const int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        return config_error("key " + key_name + " does not match certificate " + cert_name +
                            " (use the key the certificate was made for)");
    }
    return {};
}

result<void, error_info> load_pair_files(SSL_CTX* ctx, const std::string& cert_file,
                                         const std::string& key_file) {
    auto cert = read_file(cert_file, "certificate");
    if (!cert) return failure{cert.error()};
    auto key = read_file(key_file, "key");
    if (!key) return failure{key.error()};
    return load_pair(ctx, *cert, cert_file, *key, key_file);
}

result<void, error_info> load_trust(SSL_CTX* ctx, const std::string& file, const std::string& dir) {
    if (!file.empty()) {
        auto pem = read_file(file, "CA file");
        if (!pem) return failure{pem.error()};
        if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
            return config_error("CA file " + file + ": not PEM (no \"BEGIN CERTIFICATE\" block)");
        }
    }
    if (file.empty() && dir.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return config_error("system trust store: cannot load: " + openssl_reason());
        }
        return {};
    }
    if (SSL_CTX_load_verify_locations(ctx, file.empty() ? nullptr : file.c_str(),
                                      dir.empty() ? nullptr : dir.c_str()) != 1) {
        return config_error("CA " + (file.empty() ? "dir " + dir : "file " + file) +
                            ": cannot load: " + openssl_reason());
    }
    return {};
}

// ALPN's wire format: each name prefixed by its length.
result<std::string, error_info> alpn_wire(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (n.empty() || n.size() > 255) {
            return config_error("ALPN protocol \"" + n + "\": must be 1 to 255 bytes");
        }
        out += static_cast<char>(n.size());
        out += n;
    }
    return out;
}

result<SSL_CTX*, error_info> new_ctx(const SSL_METHOD* m, tls_version lo, tls_version hi) {
    SSL_CTX* ctx = SSL_CTX_new(m);
    if (ctx == nullptr) return config_error("SSL_CTX_new failed: " + openssl_reason());
    if (version_of(lo) > version_of(hi)) {
        SSL_CTX_free(ctx);
        return config_error("min_version is above max_version");
    }
    SSL_CTX_set_min_proto_version(ctx, version_of(lo));
    SSL_CTX_set_max_proto_version(ctx, version_of(hi));
    // A TCP EOF without close_notify must stay an error (SSL_R_UNEXPECTED_EOF_WHILE_READING):
    // never SSL_OP_IGNORE_UNEXPECTED_EOF. No renegotiation, no session tickets to keep it simple.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned int inlen, void* arg) {
    const auto* ours = static_cast<const std::string*>(arg);
    unsigned char* sel = nullptr;
    if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(ours->data()),
                              static_cast<unsigned int>(ours->size()), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301: no_application_protocol
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

// The server's ALPN list lives as long as the SSL_CTX itself (ex_data freed with it), not as
// long as one tls_context: every SSL made from the context holds the SSL_CTX, and a stream may
// outlive the tls_context it was made from (a temporary context is fine).
int alpn_index() {
    static const int index = SSL_CTX_get_ex_new_index(
        0, nullptr, nullptr, nullptr,
        [](void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
           void* /*argp*/) { delete static_cast<std::string*>(ptr); });
    return index;
}

}  // namespace

void tls_context::ctx_free::operator()(ssl_ctx_st* c) const noexcept {
    SSL_CTX_free(c);
}

result<tls_context, error_info> tls_context::client(const tls_client_config& cfg) {
    auto made = new_ctx(TLS_client_method(), cfg.min_version, cfg.max_version);
    if (!made) return failure{made.error()};
    tls_context out(*made, role::client, !cfg.insecure_skip_verify);
    SSL_CTX* ctx = *made;
    if (cfg.insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        if (auto t = load_trust(ctx, cfg.ca_file, cfg.ca_dir); !t) return failure{t.error()};
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    if (cfg.cert_file.empty() != cfg.key_file.empty()) {
        return config_error("client certificate: give both cert_file and key_file, or neither");
    }
    if (!cfg.cert_file.empty()) {
        if (auto p = load_pair_files(ctx, cfg.cert_file, cfg.key_file); !p)
            return failure{p.error()};
    }
    if (!cfg.alpn.empty()) {
        auto wire = alpn_wire(cfg.alpn);
        if (!wire) return failure{wire.error()};
        if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire->data()),
                                    static_cast<unsigned int>(wire->size())) != 0) {
            return config_error("ALPN: cannot set: " + openssl_reason());
        }
    }
    return out;
}

result<tls_context, error_info> tls_context::server(const tls_server_config& cfg) {
    auto made = new_ctx(TLS_server_method(), cfg.min_version, cfg.max_version);
    if (!made) return failure{made.error()};
    tls_context out(*made, role::server, !cfg.client_ca_file.empty());
    SSL_CTX* ctx = *made;
    if (!cfg.cert_file.empty() || !cfg.key_file.empty()) {
        if (cfg.cert_file.empty() || cfg.key_file.empty()) {
            return config_error("server certificate: give both cert_file and key_file");
        }
        if (auto p = load_pair_files(ctx, cfg.cert_file, cfg.key_file); !p)
            return failure{p.error()};
    } else if (!cfg.cert_pem.empty() && !cfg.key_pem.empty()) {
        if (auto p =
                load_pair(ctx, cfg.cert_pem, "(in-memory PEM)", cfg.key_pem, "(in-memory PEM)");
            !p) {
            return failure{p.error()};
        }
    } else {
        return config_error(
            "server certificate: no cert_file/key_file (or cert_pem/key_pem) given");
    }
    if (!cfg.client_ca_file.empty()) {
        if (auto t = load_trust(ctx, cfg.client_ca_file, {}); !t) return failure{t.error()};
        SSL_CTX_set_verify(
            ctx, SSL_VERIFY_PEER | (cfg.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            nullptr);
    } else if (cfg.require_client_cert) {
        return config_error("require_client_cert needs client_ca_file to verify them against");
    }
    if (!cfg.alpn.empty()) {
        auto wire = alpn_wire(cfg.alpn);
        if (!wire) return failure{wire.error()};
        auto* list = new std::string(std::move(*wire));
        if (SSL_CTX_set_ex_data(ctx, alpn_index(), list) != 1) {
            delete list;
            return config_error("cannot attach the ALPN list to the TLS context");
        }
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, list);
    }
    return out;
}

namespace tls_detail {

result<void, error_info> set_peer_name(SSL* ssl, const tls_context& ctx,
                                       const std::string& server_name, std::string_view who) {
    unsigned char ip[16];
    const bool is_ip = ::inet_pton(AF_INET, server_name.c_str(), ip) == 1 ||
                       ::inet_pton(AF_INET6, server_name.c_str(), ip) == 1;
    if (!server_name.empty() && !is_ip) SSL_set_tlsext_host_name(ssl, server_name.c_str());
    if (!ctx.verifies_peer()) return {};
    if (server_name.empty()) {
        return fail(make_error_code(errc::invalid_argument),
                    std::string(who) +
                        ": no server name to verify the certificate against "
                        "(give the host name or address, or use insecure_skip_verify)");
    }
    X509_VERIFY_PARAM* p = SSL_get0_param(ssl);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, server_name.c_str())
                         : X509_VERIFY_PARAM_set1_host(p, server_name.c_str(), 0);
    if (ok != 1) {
        return fail(make_error_code(errc::invalid_argument),
                    std::string(who) + ": cannot verify against \"" + server_name + "\"");
    }
    return {};
}

}  // namespace tls_detail

}  // namespace orderly
