// tls_context: every configuration error names the file and the reason.
#include "orderly/tls/tls_context.hpp"

#include <gtest/gtest.h>

#include "orderly/core/errc.hpp"
#include "orderly/tls/self_signed.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

TEST(tls_context, builds_from_good_files_and_system_store) {
    test::cert_dir d;
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    auto srv = tls_context::server(s);
    ASSERT_TRUE(srv) << srv.error().message();
    EXPECT_EQ(srv->side(), tls_context::role::server);
    auto cli = tls_context::client({});
    ASSERT_TRUE(cli) << cli.error().message();
    EXPECT_TRUE(cli->verifies_peer());
    tls_client_config insecure;
    insecure.insecure_skip_verify = true;
    EXPECT_FALSE(tls_context::client(insecure)->verifies_peer());
}

TEST(tls_context, errors_name_file_and_reason) {
    test::cert_dir d;
    test::cert_dir other;
    tls_server_config s;
    s.cert_file = d.dir + "/missing.pem";
    s.key_file = d.key;
    auto e = tls_context::server(s);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::tls_config_error);
    EXPECT_TRUE(has(e.error().detail, s.cert_file) && has(e.error().detail, "unreadable"))
        << e.error().detail;

    s.cert_file = d.key;  // a key is not a certificate
    e = tls_context::server(s);
    ASSERT_FALSE(e);
    EXPECT_TRUE(has(e.error().detail, d.key) && has(e.error().detail, "not PEM"))
        << e.error().detail;

    s.cert_file = d.cert;
    s.key_file = other.key;  // a key for another certificate
    e = tls_context::server(s);
    ASSERT_FALSE(e);
    EXPECT_TRUE(has(e.error().detail, other.key) && has(e.error().detail, d.cert) &&
                has(e.error().detail, "does not match"))
        << e.error().detail;

    test::cert_dir old(true);
    s.cert_file = old.cert;
    s.key_file = old.key;
    e = tls_context::server(s);
    ASSERT_FALSE(e);
    EXPECT_TRUE(has(e.error().detail, old.cert) && has(e.error().detail, "expired"))
        << e.error().detail;

    tls_client_config c;
    c.ca_file = d.dir + "/nope.pem";
    auto ce = tls_context::client(c);
    ASSERT_FALSE(ce);
    EXPECT_TRUE(has(ce.error().detail, c.ca_file) && has(ce.error().detail, "unreadable"))
        << ce.error().detail;
    c.ca_file = d.key;
    ce = tls_context::client(c);
    ASSERT_FALSE(ce);
    EXPECT_TRUE(has(ce.error().detail, "not PEM")) << ce.error().detail;
}

}  // namespace
}  // namespace orderly
