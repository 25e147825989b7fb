#include "orderly/tls/self_signed.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

X509* parse(const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    return x;
}

TEST(self_signed, names_become_sans_and_key_matches) {
    auto pem = make_self_signed();
    ASSERT_TRUE(pem) << pem.error().message();
    X509* x = parse(pem->cert);
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(X509_check_host(x, "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(x, "::1", 0), 1);
    EXPECT_NE(X509_check_host(x, "example.com", 0, 0, nullptr), 1);
    EXPECT_NE(X509_check_ip_asc(x, "127.0.0.2", 0), 1);
    EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(x)), 0);
    EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(x)), 0);
    BIO* kb = BIO_new_mem_buf(pem->key.data(), static_cast<int>(pem->key.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(X509_check_private_key(x, key), 1);
    EVP_PKEY_free(key);
    X509_free(x);
}

TEST(self_signed, expired_on_request_and_rejects_empty_names) {
    self_signed_options o;
    o.names = {"localhost"};
    o.valid_from = -std::chrono::hours(48);
    o.valid_until = -std::chrono::hours(24);
    auto pem = make_self_signed(o);
    ASSERT_TRUE(pem);
    X509* x = parse(pem->cert);
    ASSERT_NE(x, nullptr);
    EXPECT_LT(X509_cmp_current_time(X509_get0_notAfter(x)), 0);
    X509_free(x);
    o.names = {};
    auto none = make_self_signed(o);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, errc::invalid_argument);
    o.names = {"localhost", ""};
    EXPECT_FALSE(make_self_signed(o));
}

}  // namespace
}  // namespace orderly
