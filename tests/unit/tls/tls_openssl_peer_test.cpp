// tls_stream against the `openssl` command (s_server, s_client): another implementation's view
// of close_notify, TLS 1.2 and 1.3.
#include <gtest/gtest.h>

#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "support/loopback.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

class openssl_peer : public testing::TestWithParam<tls_version> {
  protected:
    const char* flag() const { return GetParam() == tls_version::tls1_3 ? "-tls1_3" : "-tls1_2"; }
    test::cert_dir d;
};

// s_server -rev answers each line reversed; our close_notify + FIN ends it, and it answers.
TEST_P(openssl_peer, s_server_request_reply_then_orderly_end) {
    test::peer_process srv({"sh", "-c",
                            "exec openssl s_server -accept 127.0.0.1:0 -naccept 1 -cert " + d.cert +
                                " -key " + d.key + " " + flag() + " -rev 2>/dev/null"});
    int port = 0;
    for (int i = 0; i < 5 && port == 0; ++i) {
        const std::string l = srv.line(5000);
        if (l.rfind("ACCEPT ", 0) == 0) port = std::stoi(l.substr(l.rfind(':') + 1));
    }
    ASSERT_GT(port, 0);
    tls_client_config c;
    c.ca_file = d.cert;
    auto sock =
        stream_socket::connect(endpoint::ipv4_loopback(static_cast<std::uint16_t>(port)), 5s)
            .value();
    auto t =
        tls_stream::client(std::move(sock), tls_context::client(c).value(), "localhost").value();
    auto hs = t.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    EXPECT_EQ(t.version(), GetParam() == tls_version::tls1_3 ? "TLSv1.3" : "TLSv1.2");
    ASSERT_TRUE(t.send_all("orderly\n", deadline::after(5s)));
    std::string got;
    char buf[256];
    while (got.find("ylredro") == std::string::npos) {
        auto n = t.recv(std::span(buf), deadline::after(5s));
        ASSERT_TRUE(n) << n.error().message() << " after: " << got;
        ASSERT_GT(*n, 0U) << got;
        got.append(buf, *n);
    }
    tls_close_options o;
    o.timeout = 5s;
    const auto end = t.close_gracefully(o);
    EXPECT_TRUE(end.tls->close_notify_sent);
    EXPECT_EQ(end.outcome, close_outcome::clean) << end.to_string();
    std::string rest;
    (void)srv.wait(rest, 5000);
}

// s_client sends a request and ignores stdin's EOF; we reply and end: it answers our
// close_notify with its own.
TEST_P(openssl_peer, s_client_gets_reply_and_answers_our_close_notify) {
    auto l = test::make_listener();
    const std::string where = "127.0.0.1:" + std::to_string(l.local_endpoint().port());
    test::peer_process cli({"sh", "-c",
                            "printf 'ping\\n' | openssl s_client -connect " + where + " -CAfile " +
                                d.cert +
                                " -verify_return_error -servername "
                                "localhost -ign_eof " +
                                flag() + " 2>&1"});
    auto sock = l.accept(deadline::after(5s)).value();
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    auto t = tls_stream::server(std::move(sock), tls_context::server(s).value()).value();
    auto hs = t.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    std::string got;
    char buf[64];
    while (got.size() < 5) {
        auto n = t.recv(std::span(buf), deadline::after(5s));
        ASSERT_TRUE(n && *n > 0) << got;
        got.append(buf, *n);
    }
    EXPECT_EQ(got, "ping\n");
    ASSERT_TRUE(t.send_all("pong from orderly\n", deadline::after(5s)));
    const auto end = t.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::clean) << end.to_string();
    EXPECT_TRUE(end.tls->close_notify_received);
    std::string out;
    EXPECT_EQ(cli.wait(out), 0) << out;
    EXPECT_NE(out.find("pong from orderly"), std::string::npos) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(tls, openssl_peer,
                         testing::Values(tls_version::tls1_2, tls_version::tls1_3),
                         [](const auto& i) {
                             return i.param == tls_version::tls1_3 ? "tls13" : "tls12";
                         });

}  // namespace
}  // namespace orderly
