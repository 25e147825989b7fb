#include "orderly/tls/tls_stream.hpp"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "openssl_util.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/net/detail/transfer_loops.hpp"

namespace orderly {

using tls_detail::openssl_reason;

void tls_stream::ssl_free::operator()(ssl_st* s) const noexcept {
    SSL_free(s);
}

tls_stream::tls_stream(stream_socket sock, ssl_st* ssl, bio_st* rbio, bio_st* wbio) noexcept
    : sock_(std::move(sock)), ssl_(ssl), rbio_(rbio), wbio_(wbio) {}

tls_stream::~tls_stream() {
    if (sock_.is_open()) (void)close();
}

result<tls_stream, error_info> tls_stream::make(stream_socket sock, const tls_context& ctx,
                                                bool client) {
    if (!sock.is_open())
        return fail(make_error_code(errc::not_open), "tls_stream: socket not open");
    if ((ctx.side() == tls_context::role::client) != client) {
        return fail(make_error_code(errc::tls_config_error),
                    client ? "tls_stream::client needs a tls_context::client context"
                           : "tls_stream::server needs a tls_context::server context");
    }
    SSL* ssl = SSL_new(ctx.native_handle());
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        return fail(make_error_code(errc::tls_config_error), "SSL_new: " + openssl_reason());
    }
    BIO_set_mem_eof_return(rbio, -1);  // empty = "try again" until the TCP EOF
    SSL_set_bio(ssl, rbio, wbio);
    if (client) {
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    return tls_stream(std::move(sock), ssl, rbio, wbio);
}

result<tls_stream, error_info> tls_stream::client(stream_socket sock, const tls_context& ctx,
                                                  const std::string& server_name) {
    auto s = make(std::move(sock), ctx, true);
    if (!s) return s;
    SSL* ssl = s->ssl_.get();
    if (auto named = tls_detail::set_peer_name(ssl, ctx, server_name, "tls_stream::client");
        !named) {
        return failure{named.error()};
    }
    return s;
}

result<tls_stream, error_info> tls_stream::server(stream_socket sock, const tls_context& ctx) {
    return make(std::move(sock), ctx, false);
}

std::error_code tls_stream::flush(deadline until) noexcept {
    char buf[16384];
    for (;;) {
        const int n = BIO_read(wbio_, buf, sizeof buf);
        if (n <= 0) return {};
        auto sent = sock_.send_all(std::string_view(buf, static_cast<std::size_t>(n)), until);
        if (!sent) {
            write_error_ = sent.error();
            (void)BIO_reset(wbio_);  // a record cut short cannot be resumed
            return sent.error();
        }
    }
}

std::error_code tls_stream::fill(deadline until) noexcept {
    if (tcp_eof_) return {};
    char buf[16384];
    auto n = sock_.recv(std::span(buf, sizeof buf), until);
    if (!n) return n.error();
    if (*n == 0) {
        tcp_eof_ = true;
        BIO_set_mem_eof_return(rbio_, 0);  // now an empty rbio is EOF for OpenSSL
        return {};
    }
    BIO_write(rbio_, buf, static_cast<int>(*n));
    return {};
}

// After an SSL call failed with `ssl_error`: the sticky TLS error and detail_.
std::error_code tls_stream::classify_failure(int ssl_error) noexcept {
    const unsigned long e = ERR_peek_error();
    if (tcp_eof_ && (ssl_error == SSL_ERROR_SYSCALL ||
                     ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        ERR_clear_error();
        detail_ = "the peer ended TCP without close_notify (unexpected eof while reading)";
        tls_error_ = make_error_code(errc::tls_truncated);
        return tls_error_;
    }
    detail_ = openssl_reason();
    tls_error_ = make_error_code(errc::tls_protocol_error);
    return tls_error_;
}

template <class Op>
int tls_stream::drive(Op op, deadline until, std::error_code& ec) {
    for (int rounds = 0;; ++rounds) {
        ERR_clear_error();
        const int ret = op();
        const int err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), ret);
        if (auto f = flush(until); f && err != SSL_ERROR_SSL) {
            ec = f;
            return -1;
        }
        if (ret > 0) return ret;
        switch (err) {
            case SSL_ERROR_WANT_READ:
                if (tcp_eof_) {  // cannot happen with eof_return 0, but never spin
                    ec = classify_failure(SSL_ERROR_SYSCALL);
                    return -1;
                }
                if (auto f = fill(until)) {
                    ec = f;
                    return -1;
                }
                continue;
            case SSL_ERROR_WANT_WRITE:
                continue;  // memory BIO: flushed above
            case SSL_ERROR_ZERO_RETURN:
                peer_notify_ = true;
                return 0;
            default:
                ec = classify_failure(err);
                return -1;
        }
    }
}

int tls_stream::read_some(void* buf, int len, deadline until, std::error_code& ec) {
    SSL* ssl = ssl_.get();
    return drive([&] { return SSL_read(ssl, buf, len); }, until, ec);
}

result<void, error_info> tls_stream::handshake(deadline until) {
    if (!sock_.is_open()) return fail(make_error_code(errc::not_open), "socket is not open");
    if (established_) return {};
    if (tls_error_) return fail(tls_error_, detail_);
    std::error_code ec;
    SSL* ssl = ssl_.get();
    const int r = drive([ssl] { return SSL_do_handshake(ssl); }, until, ec);
    if (r > 0) {
        established_ = true;
        return {};
    }
    const long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        detail_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
        tls_error_ = make_error_code(errc::tls_verify_failed);
    } else if (ec == errc::tls_truncated || ec == errc::tls_protocol_error || r == 0) {
        if (tcp_eof_) {
            detail_ =
                "the peer closed the connection during the TLS handshake (does it speak "
                "TLS on this port?)";
        } else {
            detail_ = "TLS handshake failed: " + detail_ + tls_detail::not_tls_hint(detail_);
        }
        tls_error_ = make_error_code(errc::tls_handshake_failed);
    } else {
        return fail(ec, "TLS handshake: " + ec.message());  // timed out, reset: the socket's
    }
    return fail(tls_error_, detail_);
}

result<std::size_t> tls_stream::send(std::span<const std::byte> data, deadline until) {
    if (!sock_.is_open()) return fail(make_error_code(errc::not_open));
    if (!established_) return fail(make_error_code(errc::tls_not_established));
    if (our_notify_) return fail(make_error_code(errc::write_shut));
    if (tls_error_) return fail(tls_error_);
    if (write_error_) return fail(write_error_);
    if (data.empty()) return std::size_t{0};
    const int want = static_cast<int>(std::min<std::size_t>(data.size(), 16384));
    std::error_code ec;
    SSL* ssl = ssl_.get();
    const int n = drive([&] { return SSL_write(ssl, data.data(), want); }, until, ec);
    if (n > 0) return static_cast<std::size_t>(n);
    return fail(ec ? ec : make_error_code(errc::tls_protocol_error));
}

result<std::size_t> tls_stream::send(std::string_view data, deadline until) {
    return send(std::as_bytes(std::span(data.data(), data.size())), until);
}

transfer_result tls_stream::send_all(std::span<const std::byte> data, deadline until) {
    return detail::send_all_loop(*this, data, until);
}

transfer_result tls_stream::send_all(std::string_view data, deadline until) {
    return send_all(std::as_bytes(std::span(data.data(), data.size())), until);
}

result<std::size_t> tls_stream::recv(std::span<std::byte> buf, deadline until) {
    if (!sock_.is_open()) return fail(make_error_code(errc::not_open));
    if (buf.empty()) return fail(make_error_code(errc::invalid_argument));
    if (!established_) return fail(make_error_code(errc::tls_not_established));
    if (peer_notify_ || read_shut_) return std::size_t{0};
    if (tls_error_) {
        if (tls_error_ == errc::tls_truncated && allow_unclean_eof_) return std::size_t{0};
        return fail(tls_error_);
    }
    std::error_code ec;
    SSL* ssl = ssl_.get();
    const int want = static_cast<int>(std::min<std::size_t>(buf.size(), 1 << 30));
    const int n = drive([&] { return SSL_read(ssl, buf.data(), want); }, until, ec);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (ec == errc::tls_truncated && allow_unclean_eof_) return std::size_t{0};
    return fail(ec);
}

result<std::size_t> tls_stream::recv(std::span<char> buf, deadline until) {
    return recv(std::as_writable_bytes(buf), until);
}

transfer_result tls_stream::read_to_end(std::string& out, deadline until, std::size_t limit) {
    transfer_result r;
    if (!detail::read_up_to(*this, out, until, limit, r)) return r;
    // At the limit: only a further byte proves it was exceeded (it stays buffered for recv()).
    if (SSL_pending(ssl_.get()) > 0 || (!peer_notify_ && !tls_error_)) {
        char probe[1];
        if (SSL_pending(ssl_.get()) == 0) {
            const int p = SSL_peek(ssl_.get(), probe, 1);
            if (p <= 0 && SSL_get_error(ssl_.get(), p) == SSL_ERROR_ZERO_RETURN) {
                peer_notify_ = true;
                return r;
            }
            ERR_clear_error();
            if (p <= 0) return r;  // nothing decrypted yet: cannot tell without waiting
        }
        r.set_error(make_error_code(errc::drain_limit));
    }
    return r;
}

bool tls_stream::queue_close_notify(deadline until) noexcept {
    if (our_notify_) return true;
    if (!established_ || tls_error_ || write_error_) return false;
    ERR_clear_error();
    (void)SSL_shutdown(ssl_.get());  // 0: ours queued, theirs not yet; 1: both
    ERR_clear_error();
    if (flush(until)) return false;
    our_notify_ = true;
    return true;
}

result<void> tls_stream::shutdown(shut how) {
    if (!sock_.is_open()) return fail(make_error_code(errc::not_open));
    if (how != shut::read && !our_notify_) {
        if (!established_) return fail(make_error_code(errc::tls_not_established));
        if (!queue_close_notify(deadline::never())) {
            return fail(write_error_ ? write_error_
                                     : (tls_error_ ? tls_error_
                                                   : make_error_code(errc::tls_protocol_error)));
        }
    }
    if (how != shut::write) read_shut_ = true;
    // TCP: SHUT_WR after close_notify; reading is only a TLS-level decision (SHUT_RD would make
    // the peer's close_notify undeliverable).
    if (how == shut::read) return {};
    return sock_.shutdown(shut::write);
}

std::string tls_stream::version() const {
    return established_ ? SSL_get_version(ssl_.get()) : std::string();
}

std::string tls_stream::cipher() const {
    const char* c = established_ ? SSL_get_cipher_name(ssl_.get()) : nullptr;
    return c != nullptr && established_ ? c : std::string();
}

std::string tls_stream::alpn() const {
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    if (established_) SSL_get0_alpn_selected(ssl_.get(), &p, &len);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

}  // namespace orderly
