// tls_stream against itself on loopback: the orderly end both ways, verification failures,
// peers that do not speak TLS. TLS 1.2 and 1.3 each.
#include "orderly/tls/tls_stream.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "orderly/core/errc.hpp"
#include "support/loopback.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

tls_context server_ctx(const test::cert_dir& d, tls_version v) {
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    s.min_version = s.max_version = v;
    s.alpn = {"orderly/1"};
    return tls_context::server(s).value();
}

tls_context client_ctx(const std::string& ca, tls_version v) {
    tls_client_config c;
    c.ca_file = ca;
    c.min_version = c.max_version = v;
    c.alpn = {"orderly/1"};
    return tls_context::client(c).value();
}

class tls_versions : public testing::TestWithParam<tls_version> {};

TEST_P(tls_versions, half_close_request_reply_every_byte_clean_both_ends) {
    test::cert_dir d;
    auto p = test::make_pair();
    auto sctx = server_ctx(d, GetParam());
    auto cctx = client_ctx(d.cert, GetParam());
    const std::string request(100000, 'q');
    close_report server_end;
    std::string got_request;
    std::thread server([&] {
        auto s = tls_stream::server(std::move(p.server), sctx).value();
        ASSERT_TRUE(s.handshake(deadline::after(5s)));
        auto r = s.read_to_end(got_request, deadline::after(5s));
        EXPECT_TRUE(r) << r.error().message();
        EXPECT_TRUE(s.close_notify_received());
        EXPECT_TRUE(s.send_all("reply:" + std::to_string(got_request.size()), deadline::after(5s)));
        server_end = s.close_gracefully();
    });
    auto c = tls_stream::client(std::move(p.client), cctx, "localhost").value();
    auto hs = c.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    EXPECT_EQ(c.version(), GetParam() == tls_version::tls1_3 ? "TLSv1.3" : "TLSv1.2");
    EXPECT_EQ(c.alpn(), "orderly/1");
    auto sent = c.send_all(request, deadline::after(5s));
    EXPECT_TRUE(sent);
    EXPECT_EQ(sent.bytes, request.size());
    ASSERT_TRUE(c.shutdown(shut::write));  // close_notify + FIN; reading still works
    std::string reply;
    auto rr = c.read_to_end(reply, deadline::after(5s));
    EXPECT_TRUE(rr) << rr.error().message();
    EXPECT_EQ(reply, "reply:100000");
    close_report client_end = c.close_gracefully();
    server.join();
    EXPECT_EQ(got_request, request);
    for (const close_report* r : {&client_end, &server_end}) {
        EXPECT_EQ(r->outcome, close_outcome::clean) << r->to_string();
        ASSERT_TRUE(r->tls);
        EXPECT_TRUE(r->tls->close_notify_sent && r->tls->close_notify_received) << r->to_string();
        EXPECT_EQ(r->tls->wait, close_notify_wait::received);
        EXPECT_TRUE(r->fin_sent && r->peer_eof) << r->to_string();
        EXPECT_EQ(r->unread_bytes, 0U);
    }
    EXPECT_EQ(server_end.tls->alpn, "orderly/1");
}

INSTANTIATE_TEST_SUITE_P(tls, tls_versions,
                         testing::Values(tls_version::tls1_2, tls_version::tls1_3),
                         [](const auto& i) {
                             return i.param == tls_version::tls1_3 ? "tls13" : "tls12";
                         });

// The client's verdict on a server certificate; the server just tries its handshake.
std::string verify_error(const test::cert_dir& server_cert, const std::string& ca,
                         const std::string& name, std::error_code& code) {
    auto p = test::make_pair();
    auto sctx = server_ctx(server_cert, tls_version::tls1_3);
    std::thread server([&] {
        auto s = tls_stream::server(std::move(p.server), sctx).value();
        auto hs = s.handshake(deadline::after(5s));  // fails on the client's alert
        if (hs) {
            std::string ignored;
            (void)s.read_to_end(ignored, deadline::after(5s));
            (void)s.close_gracefully();
        } else {
            (void)s.close();
        }
    });
    auto c =
        tls_stream::client(std::move(p.client), client_ctx(ca, tls_version::tls1_3), name).value();
    auto hs = c.handshake(deadline::after(5s));
    std::string out = hs ? "" : hs.error().message();
    code = hs ? std::error_code() : hs.error().code;
    const auto r = c.close_gracefully();
    EXPECT_EQ(r.outcome, hs ? close_outcome::clean : close_outcome::tls_error) << r.to_string();
    server.join();
    return out;
}

TEST(tls_stream, verify_failures_say_why) {
    test::cert_dir d;
    test::cert_dir stranger;
    std::error_code code;
    auto e = verify_error(d, d.cert, "wrong.example", code);
    EXPECT_EQ(code, errc::tls_verify_failed);
    EXPECT_TRUE(has(e, "hostname mismatch")) << e;
    e = verify_error(d, d.cert, "127.0.0.2", code);
    EXPECT_EQ(code, errc::tls_verify_failed);
    EXPECT_TRUE(has(e, "IP address mismatch")) << e;
    e = verify_error(d, stranger.cert, "localhost", code);
    EXPECT_EQ(code, errc::tls_verify_failed);
    EXPECT_TRUE(has(e, "certificate verify failed: self-signed certificate")) << e;
    e = verify_error(d, d.cert, "127.0.0.1", code);  // the right name as an IP SAN
    EXPECT_EQ(code, std::error_code()) << e;
}

// An abort() after a failed handshake (what a client that gives up does) ends the connection
// because TLS failed: the report says tls_error with the reason, not a local `aborted`.
TEST(tls_stream, abort_after_a_failed_handshake_is_tls_error) {
    test::cert_dir d;
    auto p = test::make_pair();
    std::thread server([&] {
        auto s =
            tls_stream::server(std::move(p.server), server_ctx(d, tls_version::tls1_3)).value();
        (void)s.handshake(deadline::after(5s));
        (void)s.close();
    });
    auto c = tls_stream::client(std::move(p.client), client_ctx(d.cert, tls_version::tls1_3),
                                "wrong.example")
                 .value();
    auto hs = c.handshake(deadline::after(5s));
    ASSERT_FALSE(hs);
    const auto r = c.abort();
    EXPECT_EQ(r.outcome, close_outcome::tls_error) << r.to_string();
    EXPECT_EQ(r.error, hs.error().code) << r.to_string();
    EXPECT_FALSE(r.tls->detail.empty()) << r.to_string();
    server.join();
}

// A peer that speaks plain text (or garbage): a handshake error, no hang, tls_error.
TEST(tls_stream, plain_tcp_or_garbage_peer_is_tls_error_without_hanging) {
    test::cert_dir d;
    for (const std::string& junk : {std::string("HTTP/1.1 200 OK\r\n\r\nhello"),
                                    std::string("\x16\x03\x01\xff\xff garbage", 14)}) {
        auto p = test::make_pair();
        std::thread peer([&] {
            (void)p.server.send_all(junk, deadline::after(5s));
            std::string ignored;
            (void)p.server.read_to_end(ignored, deadline::after(5s));
            (void)p.server.close();
        });
        auto c = tls_stream::client(std::move(p.client), client_ctx(d.cert, tls_version::tls1_3),
                                    "localhost")
                     .value();
        const auto t0 = clock::now();
        auto hs = c.handshake(deadline::after(5s));
        ASSERT_FALSE(hs);
        EXPECT_EQ(hs.error().code, errc::tls_handshake_failed) << hs.error().message();
        EXPECT_LT(clock::now() - t0, 2s);
        const auto r = c.close_gracefully();
        EXPECT_EQ(r.outcome, close_outcome::tls_error) << r.to_string();
        EXPECT_FALSE(r.tls->detail.empty());
        peer.join();
    }
    // And a server whose client sends garbage: the same, from the other side.
    auto p = test::make_pair();
    std::thread peer([&] {
        (void)p.client.send_all("GET / HTTP/1.0\r\n\r\n", deadline::after(5s));
        std::string ignored;
        (void)p.client.read_to_end(ignored, deadline::after(5s));
        (void)p.client.close();
    });
    auto s = tls_stream::server(std::move(p.server), server_ctx(d, tls_version::tls1_2)).value();
    auto hs = s.handshake(deadline::after(5s));
    ASSERT_FALSE(hs);
    EXPECT_EQ(hs.error().code, errc::tls_handshake_failed);
    EXPECT_NE(hs.error().message().find("plain HTTP request"), std::string::npos)
        << hs.error().message();
    EXPECT_EQ(s.close_gracefully().outcome, close_outcome::tls_error);
    peer.join();
}

TEST(tls_stream, handshake_deadline_with_a_silent_peer) {
    test::cert_dir d;
    auto p = test::make_pair();
    auto c = tls_stream::client(std::move(p.client), client_ctx(d.cert, tls_version::tls1_3),
                                "localhost")
                 .value();
    const auto t0 = clock::now();
    auto hs = c.handshake(deadline::after(200ms));
    ASSERT_FALSE(hs);
    EXPECT_EQ(hs.error().code, errc::timed_out);
    EXPECT_LT(clock::now() - t0, 2s);
    EXPECT_FALSE(c.send("x"));
    (void)c.abort();
}

// Both handshakes of one pair; returns the client's and the server's results.
std::pair<std::error_code, std::error_code> handshake_pair(const tls_context& sctx,
                                                           const tls_context& cctx) {
    auto p = test::make_pair();
    std::error_code server_error;
    std::thread server([&] {
        auto s = tls_stream::server(std::move(p.server), sctx).value();
        auto hs = s.handshake(deadline::after(5s));
        if (!hs) server_error = hs.error().code;
        (void)s.close();
    });
    auto c = tls_stream::client(std::move(p.client), cctx, "localhost").value();
    auto hs = c.handshake(deadline::after(5s));
    std::error_code client_error = hs ? std::error_code() : hs.error().code;
    if (hs) {  // TLS 1.3: a client learns of the server's rejection on its first read
        char b[8];
        auto n = c.recv(std::span(b), deadline::after(5s));
        if (!n) client_error = n.error();
    }
    (void)c.close();
    server.join();
    return {client_error, server_error};
}

TEST(tls_stream, client_certificates_required_and_verified) {
    test::cert_dir d;
    test::cert_dir client_id;
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    s.client_ca_file = client_id.cert;
    s.require_client_cert = true;
    auto sctx = tls_context::server(s).value();
    tls_client_config c;
    c.ca_file = d.cert;
    auto [anon_client, anon_server] = handshake_pair(sctx, tls_context::client(c).value());
    EXPECT_EQ(anon_server, errc::tls_handshake_failed);
    EXPECT_TRUE(anon_client) << "a client without a certificate got through";
    c.cert_file = client_id.cert;
    c.key_file = client_id.key;
    auto [ok_client, ok_server] = handshake_pair(sctx, tls_context::client(c).value());
    EXPECT_FALSE(ok_server) << ok_server.message();
    EXPECT_FALSE(ok_client) << ok_client.message();  // close() sent close_notify: recv said 0
}

TEST(tls_stream, alpn_mismatch_fails_and_writes_after_close_notify_are_refused) {
    test::cert_dir d;
    tls_client_config c;
    c.ca_file = d.cert;
    c.alpn = {"other/1"};
    auto [client_error, server_error] =
        handshake_pair(server_ctx(d, tls_version::tls1_3), tls_context::client(c).value());
    EXPECT_EQ(server_error, errc::tls_handshake_failed);
    EXPECT_TRUE(client_error);

    auto p = test::make_pair();
    auto sctx = server_ctx(d, tls_version::tls1_2);
    std::thread server([&] {
        auto s = tls_stream::server(std::move(p.server), sctx).value();
        ASSERT_TRUE(s.handshake(deadline::after(5s)));
        std::string ignored;
        EXPECT_TRUE(s.read_to_end(ignored, deadline::after(5s)));
        (void)s.close_gracefully();
    });
    auto t = tls_stream::client(std::move(p.client), client_ctx(d.cert, tls_version::tls1_2),
                                "localhost")
                 .value();
    ASSERT_TRUE(t.handshake(deadline::after(5s)));
    ASSERT_TRUE(t.shutdown(shut::write));
    EXPECT_TRUE(t.close_notify_sent());
    EXPECT_EQ(t.send("late").error(), errc::write_shut);
    EXPECT_EQ(t.close_gracefully().outcome, close_outcome::clean);
    server.join();
}

// A peer that keeps sending after our close_notify: discarded up to the cap, then drain_limit
// (aborted), and what was read counts as drained, not received.
TEST(tls_stream, drain_cap_after_our_close_notify) {
    test::cert_dir d;
    auto p = test::make_pair();
    auto sctx = server_ctx(d, tls_version::tls1_3);
    std::thread server([&] {
        auto s = tls_stream::server(std::move(p.server), sctx).value();
        ASSERT_TRUE(s.handshake(deadline::after(5s)));
        const std::string chunk(16384, 'x');
        for (int i = 0; i < 400; ++i) {  // 6.4 MB at most; the client's RST stops it
            if (!s.send_all(chunk, deadline::after(5s))) break;
        }
        (void)s.close();
    });
    auto c = tls_stream::client(std::move(p.client), client_ctx(d.cert, tls_version::tls1_3),
                                "localhost")
                 .value();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    const auto received = c.socket().bytes_received();
    tls_close_options o;
    o.drain_limit = 100000;
    const auto end = c.close_gracefully(o);
    EXPECT_EQ(end.outcome, close_outcome::drain_limit) << end.to_string();
    EXPECT_GT(end.bytes_drained, o.drain_limit) << end.to_string();
    EXPECT_LT(end.bytes_drained, o.drain_limit + 40000) << end.to_string();
    EXPECT_EQ(end.bytes_received, received) << end.to_string();
    EXPECT_TRUE(end.tls->close_notify_sent);
    EXPECT_FALSE(end.tls->close_notify_received);
    server.join();
}

}  // namespace
}  // namespace orderly
