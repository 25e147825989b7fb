#include "orderly/tls/self_signed.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "openssl_util.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

using tls_detail::bio_ptr;
using tls_detail::openssl_reason;

struct pkey_free {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const noexcept { X509_free(p); }
};
struct names_free {
    void operator()(GENERAL_NAMES* p) const noexcept { GENERAL_NAMES_free(p); }
};

failure<error_info> ssl_failure(const char* what) {
    return fail(make_error_code(errc::tls_config_error),
                std::string("make_self_signed: ") + what + ": " + openssl_reason());
}

// One SAN entry: an IP SAN for an address literal, a DNS SAN otherwise.
GENERAL_NAME* san_for(const std::string& name) {
    unsigned char ip[16];
    int ip_len = 0;
    if (::inet_pton(AF_INET, name.c_str(), ip) == 1) {
        ip_len = 4;
    } else if (::inet_pton(AF_INET6, name.c_str(), ip) == 1) {
        ip_len = 16;
    }
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (gn == nullptr) return nullptr;
    ASN1_STRING* s = ip_len > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    const bool ok =
        s != nullptr &&
        (ip_len > 0 ? ASN1_OCTET_STRING_set(s, ip, ip_len)
                    : ASN1_STRING_set(s, name.data(), static_cast<int>(name.size()))) == 1;
    if (!ok) {
        ASN1_STRING_free(s);
        GENERAL_NAME_free(gn);
        return nullptr;
    }
    GENERAL_NAME_set0_value(gn, ip_len > 0 ? GEN_IPADD : GEN_DNS, s);
    return gn;
}

std::string pem_of(int (*write)(BIO*, void*), void* obj) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get(), obj) != 1) return {};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace

result<self_signed_pem, error_info> make_self_signed(const self_signed_options& opts) {
    if (opts.names.empty()) {
        return fail(make_error_code(errc::invalid_argument),
                    "make_self_signed: no names given; pass at least one host name or address");
    }
    for (const auto& n : opts.names) {
        if (n.empty()) {
            return fail(make_error_code(errc::invalid_argument),
                        "make_self_signed: an empty name; every name must be a host or address");
        }
    }
    std::unique_ptr<EVP_PKEY, pkey_free> key(EVP_EC_gen("P-256"));
    if (!key) return ssl_failure("generating an EC P-256 key failed");
    std::unique_ptr<X509, x509_free> cert(X509_new());
    if (!cert) return ssl_failure("X509_new failed");

    // A random 127-bit serial, as RFC 5280 asks serials to be unique and positive.
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), &BN_free);
    if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
        return ssl_failure("making a serial number failed");
    }
    X509_set_version(cert.get(), 2);  // v3: needed for extensions
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(opts.valid_from.count()));
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(opts.valid_until.count()));
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const std::string cn = opts.names.front().substr(0, 64);  // CN is at most 64 characters
    if (X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("orderly self-signed"),
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(cert.get(), subject) != 1) {
        return ssl_failure("setting the subject failed");
    }
    if (X509_set_pubkey(cert.get(), key.get()) != 1) return ssl_failure("X509_set_pubkey failed");

    std::unique_ptr<GENERAL_NAMES, names_free> sans(sk_GENERAL_NAME_new_null());
    if (!sans) return ssl_failure("allocating the SAN list failed");
    for (const auto& n : opts.names) {
        GENERAL_NAME* gn = san_for(n);
        if (gn == nullptr || sk_GENERAL_NAME_push(sans.get(), gn) == 0) {
            GENERAL_NAME_free(gn);
            return ssl_failure("adding a subject alternative name failed");
        }
    }
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, sans.get(), 0, 0) != 1) {
        return ssl_failure("adding the subjectAltName extension failed");
    }
    // A self-signed end-entity certificate that is also its own trust anchor: CA:TRUE lets
    // OpenSSL accept it as the CA file that verifies it.
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] :
         {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
          std::pair{NID_key_usage, "critical,digitalSignature,keyCertSign"},
          std::pair{NID_ext_key_usage, "serverAuth,clientAuth"},
          std::pair{NID_subject_key_identifier, "hash"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
        if (ext == nullptr || X509_add_ext(cert.get(), ext, -1) != 1) {
            X509_EXTENSION_free(ext);
            return ssl_failure("adding a v3 extension failed");
        }
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return ssl_failure("signing failed");

    self_signed_pem out;
    out.cert = pem_of([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)); },
                      cert.get());
    out.key = pem_of(
        [](BIO* b, void* k) {
            return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0,
                                            nullptr, nullptr);
        },
        key.get());
    if (out.cert.empty() || out.key.empty()) return ssl_failure("writing PEM failed");
    return out;
}

result<void, error_info> write_pem_file(const std::string& path, const std::string& pem) {
    const bool secret = pem.find("PRIVATE KEY") != std::string::npos;
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        const int err = errno;
        return fail(errno_code(err), path + ": cannot write: " + std::strerror(err));
    }
    std::size_t done = 0;
    while (done < pem.size()) {
        const ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            ::close(fd);
            return fail(errno_code(err), path + ": cannot write: " + std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) {
        const int err = errno;
        return fail(errno_code(err), path + ": cannot write: " + std::strerror(err));
    }
    return {};
}

}  // namespace orderly
