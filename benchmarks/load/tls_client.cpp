#include "tls_client.hpp"

#include <openssl/err.h>
#include <sys/epoll.h>

#include <cerrno>

#include "output.hpp"
#include "sys.hpp"

namespace load {

SSL_CTX* tls_client_ctx() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
        set_error("cannot set up the TLS client context (OpenSSL)");
        SSL_CTX_free(ctx);
        return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // see tls_client.hpp
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);  // one recv() for all the records that are there
    return ctx;
}

std::uint32_t tls_wants(SSL* ssl, int r, std::string& why) {
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ) return EPOLLIN;
    if (e == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
    if (e == SSL_ERROR_ZERO_RETURN) {
        why = "the server's close_notify";
    } else if (e == SSL_ERROR_SYSCALL) {
        why = errno ? errstr(errno) : "EOF without close_notify";
    } else {
        char text[256];
        ERR_error_string_n(ERR_peek_last_error(), text, sizeof text);
        why = text;
    }
    ERR_clear_error();
    return 0;
}

void put_tls_info(SSL* ssl) {
    out().boolean("tls", true);
    out().str("tls_version", SSL_get_version(ssl));
    out().str("tls_cipher", SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    out().str("tls_verify", "none (benchmark: the certificate is not checked)");
}

}  // namespace load
