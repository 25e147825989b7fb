#pragma once
// Small OpenSSL helpers shared by the tls layer's sources (not installed).

#include <openssl/bio.h>
#include <openssl/err.h>

#include <memory>
#include <string>

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

}  // namespace orderly::tls_detail
