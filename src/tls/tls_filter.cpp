// tls_filter: OpenSSL over two memory BIOs, driven by a connection's callbacks instead of a
// blocking socket. Every call returns at once: what OpenSSL cannot do yet (a handshake waiting
// for the peer's next flight, a record cut in the middle) waits for the next feed().

#include "orderly/tls/tls_filter.hpp"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <climits>

#include "openssl_util.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {

using tls_detail::openssl_reason;

namespace {
// One TLS record's plaintext at most: what one read_plaintext() hands over.
constexpr std::size_t plain_chunk = 16384;
}  // namespace

void tls_filter::ssl_free::operator()(ssl_st* s) const noexcept {
    SSL_free(s);
}

tls_filter::tls_filter(ssl_st* ssl, bio_st* rbio, bio_st* wbio) noexcept
    : ssl_(ssl), rbio_(rbio), wbio_(wbio) {}

tls_filter::~tls_filter() = default;

result<std::unique_ptr<tls_filter>, error_info> tls_filter::make(const tls_context& ctx,
                                                                 bool client) {
    if ((ctx.side() == tls_context::role::client) != client) {
        return fail(make_error_code(errc::tls_config_error),
                    client ? "tls_filter::client needs a tls_context::client context"
                           : "tls_filter::server needs a tls_context::server context");
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
    // An empty rbio means "more will come": the TCP EOF is the connection's to judge, never
    // OpenSSL's (a FIN without close_notify is tls_truncated, decided by the connection).
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    if (client) {
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    std::unique_ptr<tls_filter> f(new tls_filter(ssl, rbio, wbio));
    f->client_ = client;
    return f;
}

result<std::unique_ptr<tls_filter>, error_info> tls_filter::server(const tls_context& ctx) {
    return make(ctx, false);
}

std::function<result<std::unique_ptr<stream_filter>, error_info>()> tls_filter::server_factory(
    tls_context ctx) {
    return [ctx = std::move(ctx)]() -> result<std::unique_ptr<stream_filter>, error_info> {
        auto f = server(ctx);
        if (!f) return failure<error_info>{f.error()};
        return std::unique_ptr<stream_filter>(std::move(*f));
    };
}

result<std::unique_ptr<tls_filter>, error_info> tls_filter::client(const tls_context& ctx,
                                                                   const std::string& server_name) {
    auto f = make(ctx, true);
    if (!f) return f;
    SSL* ssl = (*f)->ssl_.get();
    if (auto named = tls_detail::set_peer_name(ssl, ctx, server_name, "tls_filter::client");
        !named) {
        return failure{named.error()};
    }
    return f;
}

void tls_filter::fail_with(int ssl_error) {
    detail_ = openssl_reason();
    if (!established_) detail_ += tls_detail::not_tls_hint(detail_);
    if (ssl_error == SSL_ERROR_SYSCALL && detail_ == "no reason given by OpenSSL") {
        detail_ = "TLS failed (SSL_ERROR_SYSCALL over a memory BIO)";
    }
}

void tls_filter::start() {
    if (client_) advance_handshake();  // the ClientHello, for take_ciphertext()
}

void tls_filter::advance_handshake() {
    if (established_ || failed()) return;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
        established_ = true;
        if (!held_.empty()) {
            std::vector<std::byte> held;
            held.swap(held_);
            (void)encrypt(held);
        }
        return;
    }
    const int err = SSL_get_error(ssl_.get(), r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) fail_with(err);
}

bool tls_filter::feed(std::span<const std::byte> ciphertext) {
    if (failed()) return false;
    std::size_t done = 0;
    while (done < ciphertext.size()) {  // a memory BIO takes everything; INT_MAX per call
        const std::size_t n = std::min<std::size_t>(ciphertext.size() - done, INT_MAX);
        const int w = BIO_write(rbio_, ciphertext.data() + done, static_cast<int>(n));
        if (w <= 0) {
            detail_ = "BIO_write to the memory BIO failed: " + openssl_reason();
            return false;
        }
        done += static_cast<std::size_t>(w);
    }
    advance_handshake();
    return !failed();
}

std::span<const std::byte> tls_filter::read_plaintext() {
    if (!established_ || failed() || peer_notify_) return {};
    plain_.resize(plain_chunk);
    const int n = SSL_read(ssl_.get(), plain_.data(), static_cast<int>(plain_.size()));
    if (n > 0) return std::span<const std::byte>(plain_.data(), static_cast<std::size_t>(n));
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_ZERO_RETURN) {
        peer_notify_ = true;
    } else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        fail_with(err);
    }
    return {};
}

bool tls_filter::encrypt(std::span<const std::byte> plaintext) {
    std::size_t done = 0;
    while (done < plaintext.size()) {
        const std::size_t n = std::min<std::size_t>(plaintext.size() - done, INT_MAX);
        const int w = SSL_write(ssl_.get(), plaintext.data() + done, static_cast<int>(n));
        if (w <= 0) {
            fail_with(SSL_get_error(ssl_.get(), w));
            return false;
        }
        done += static_cast<std::size_t>(w);
    }
    return true;
}

bool tls_filter::write_plaintext(std::span<const std::byte> plaintext) {
    if (failed()) return false;
    if (!established_) {
        held_.insert(held_.end(), plaintext.begin(), plaintext.end());
        return true;
    }
    return encrypt(plaintext);
}

void tls_filter::send_close_notify() {
    if (our_notify_ || !established_ || failed()) return;
    // 0: ours is queued and theirs has not come (the usual half-close); 1: both. Either way
    // ours is in the wbio.
    if (SSL_shutdown(ssl_.get()) >= 0) {
        our_notify_ = true;
    } else {
        detail_ = "SSL_shutdown: " + openssl_reason();
    }
}

std::span<const std::byte> tls_filter::take_ciphertext() {
    const std::size_t pending = BIO_ctrl_pending(wbio_);
    if (pending == 0) return {};
    // Grown, never shrunk to zero between chunks: a resize from 0 zero-fills every record once
    // before BIO_read overwrites it (seen as memset in the TLS echo's profile). Past a burst it
    // goes back to one record's worth, so an idle connection does not keep a large buffer.
    if (out_.size() < pending) {
        out_.resize(pending);
    } else if (out_.size() > 4 * plain_chunk && pending <= plain_chunk) {
        std::vector<std::byte>(plain_chunk).swap(out_);
    }
    const int n =
        BIO_read(wbio_, out_.data(), static_cast<int>(std::min<std::size_t>(pending, INT_MAX)));
    if (n <= 0) return {};
    return std::span<const std::byte>(out_.data(), static_cast<std::size_t>(n));
}

void tls_filter::describe(tls_close_info& out) const {
    out.close_notify_sent = our_notify_;
    out.close_notify_received = peer_notify_;
    if (peer_notify_) out.wait = close_notify_wait::received;
    if (established_) {
        out.version = SSL_get_version(ssl_.get());
        if (const char* c = SSL_get_cipher_name(ssl_.get())) out.cipher = c;
        const unsigned char* p = nullptr;
        unsigned int len = 0;
        SSL_get0_alpn_selected(ssl_.get(), &p, &len);
        if (p != nullptr) out.alpn.assign(reinterpret_cast<const char*>(p), len);
    }
    if (!detail_.empty()) out.detail = detail_;
}

}  // namespace orderly
