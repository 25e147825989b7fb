#pragma once
// Small OpenSSL helpers shared by the tls layer's sources (not installed).

#include <openssl/bio.h>
#include <openssl/err.h>

#include <memory>
#include <string>
#include <string_view>

#include "orderly/core/result.hpp"

struct ssl_st;

namespace orderly {
class tls_context;
}

namespace orderly::tls_detail {

struct bio_free {
    void operator()(BIO* b) const noexcept { BIO_free_all(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;

// The reasons on OpenSSL's error queue for this thread, oldest first ("; "-joined), and the
// queue cleared. "no reason given by OpenSSL" when the queue is empty.
inline std::string openssl_reason() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        const char* r = ERR_reason_error_string(e);
        if (!out.empty()) out += "; ";
        if (r != nullptr) {
            out += r;
        } else {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            out += buf;
        }
    }
    return out.empty() ? std::string("no reason given by OpenSSL") : out;
}

// A hint for a handshake that failed with OpenSSL's `reason`, when the reason says the peer's bytes
// were not TLS at all: "" otherwise. Against a plain-TCP port OpenSSL says only "wrong version
// number" (client) or "http request" / "wrong version number" (server).
inline std::string not_tls_hint(std::string_view reason) {
    if (reason.find("http request") != std::string_view::npos) {
        return " (the peer sent a plain HTTP request: it does not speak TLS; use http://, or plain "
               "TCP)";
    }
    if (reason.find("wrong version number") != std::string_view::npos ||
        reason.find("unknown protocol") != std::string_view::npos ||
        reason.find("packet length too long") != std::string_view::npos) {
        return " (the peer's bytes are not TLS: does it speak TLS on this port? For plain TCP, "
               "leave TLS off)";
    }
    return {};
}

// A client's peer name on `ssl`: sent as SNI unless it is an IP literal, and verified against the
// certificate (an IP literal as an IP SAN) when `ctx` verifies. `who` names the caller in errors
// ("tls_stream::client"). Errors: errc::invalid_argument.
result<void, error_info> set_peer_name(ssl_st* ssl, const tls_context& ctx,
                                       const std::string& server_name, std::string_view who);

}  // namespace orderly::tls_detail
