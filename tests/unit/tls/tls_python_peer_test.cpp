// tls_stream against Python's ssl module (a real, independent TLS stack): truncation, peers that
// never answer close_notify (the policy and the deadline), unwrap() both ways, expired certs.
#include <gtest/gtest.h>

#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "support/loopback.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

struct python_server {
    python_server(const std::string& mode, const test::cert_dir& d, const char* version)
        : proc({"python3", test::tls_peer_script(), mode, d.cert, d.key, version}) {
        const std::string l = proc.line();
        if (l.rfind("port ", 0) == 0) port = std::stoi(l.substr(5));
    }
    test::peer_process proc;
    int port = 0;
};

tls_stream connect_to(const python_server& py, const std::string& ca, tls_version v) {
    tls_client_config c;
    c.ca_file = ca;
    c.min_version = c.max_version = v;
    auto ctx = tls_context::client(c).value();
    auto sock =
        stream_socket::connect(endpoint::ipv4_loopback(static_cast<std::uint16_t>(py.port)), 5s)
            .value();
    return tls_stream::client(std::move(sock), ctx, "localhost").value();
}

class python_peer : public testing::TestWithParam<tls_version> {
  protected:
    const char* ver() const { return GetParam() == tls_version::tls1_3 ? "1.3" : "1.2"; }
    test::cert_dir d;
};

TEST_P(python_peer, half_close_and_unwrap_answers_our_close_notify) {
    python_server py("echo-unwrap", d, ver());
    ASSERT_GT(py.port, 0);
    auto c = connect_to(py, d.cert, GetParam());
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    const std::string request(70000, 'r');
    EXPECT_EQ(c.send_all(request, deadline::after(5s)).bytes, request.size());
    ASSERT_TRUE(c.shutdown(shut::write));
    std::string reply;
    auto r = c.read_to_end(reply, deadline::after(5s));
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(reply, "reply:" + request);
    const auto end = c.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::clean) << end.to_string();
    std::string out;
    EXPECT_EQ(py.proc.wait(out), 0);
    EXPECT_TRUE(has(out, "request 70000\nunwrap-ok")) << out;  // our close_notify arrived
}

TEST_P(python_peer, truncating_peer_is_tls_truncated) {
    python_server py("truncate", d, ver());
    auto c = connect_to(py, d.cert, GetParam());
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    std::string got;
    auto r = c.read_to_end(got, deadline::after(5s));
    EXPECT_EQ(got, "partial data");
    EXPECT_EQ(r.error(), errc::tls_truncated);
    char buf[8];
    EXPECT_EQ(c.recv(std::span(buf), deadline::after(1s)).error(), errc::tls_truncated);
    const auto end = c.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::tls_truncated) << end.to_string();
    EXPECT_EQ(end.error, errc::tls_truncated);
    EXPECT_FALSE(end.tls->close_notify_received);
    EXPECT_EQ(end.tls->wait, close_notify_wait::peer_fin);
    EXPECT_TRUE(end.peer_eof) << end.to_string();
}

// The peer closes at once without close_notify; the alert OpenSSL sends about the truncation
// meets its closed socket and comes back as RST. The truncation came first and is what the
// report must say: the reset is the echo of our own alert.
TEST_P(python_peer, truncating_peer_that_is_gone_is_still_tls_truncated) {
    python_server py("truncate-close", d, ver());
    auto c = connect_to(py, d.cert, GetParam());
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    std::string got;
    auto r = c.read_to_end(got, deadline::after(5s));
    EXPECT_EQ(got, "partial data");
    EXPECT_EQ(r.error(), errc::tls_truncated);
    std::this_thread::sleep_for(50ms);  // our alert's RST is back
    const auto end = c.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::tls_truncated) << end.to_string();
    EXPECT_EQ(end.error, errc::tls_truncated);
    EXPECT_TRUE(end.peer_eof) << end.to_string();
}

TEST_P(python_peer, allow_unclean_eof_makes_truncation_an_eof) {
    python_server py("truncate", d, ver());
    auto c = connect_to(py, d.cert, GetParam());
    c.allow_unclean_eof(true);
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    std::string got;
    EXPECT_TRUE(c.read_to_end(got, deadline::after(5s)));
    EXPECT_EQ(got, "partial data");
    const auto end = c.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::closed) << end.to_string();  // never clean
}

TEST_P(python_peer, peer_fin_without_close_notify_follows_the_policy) {
    for (const bool wait : {true, false}) {
        python_server py("no-answer-fin", d, ver());
        auto c = connect_to(py, d.cert, GetParam());
        ASSERT_TRUE(c.handshake(deadline::after(5s)));
        ASSERT_TRUE(c.send_all("hello", deadline::after(5s)));
        tls_close_options o;
        o.timeout = 3s;
        o.wait_for_peer_close_notify = wait;
        const auto end = c.close_gracefully(o);
        EXPECT_TRUE(end.tls->close_notify_sent);
        EXPECT_FALSE(end.tls->close_notify_received);
        if (wait) {
            EXPECT_EQ(end.outcome, close_outcome::tls_truncated) << end.to_string();
            EXPECT_EQ(end.tls->wait, close_notify_wait::peer_fin);
        } else {
            EXPECT_EQ(end.outcome, close_outcome::closed) << end.to_string();
            EXPECT_EQ(end.tls->wait, close_notify_wait::not_waited);
        }
        EXPECT_LT(end.close_duration, 2s);
        std::string out;
        EXPECT_EQ(py.proc.wait(out), 0);
        EXPECT_TRUE(has(out, "request 5")) << out;  // our close_notify ended its read
    }
}

TEST_P(python_peer, silent_peer_hits_the_deadline) {
    python_server py("no-answer-hold", d, ver());
    auto c = connect_to(py, d.cert, GetParam());
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    tls_close_options o;
    o.timeout = 300ms;
    const auto t0 = clock::now();
    const auto end = c.close_gracefully(o);
    const auto took = clock::now() - t0;
    EXPECT_EQ(end.outcome, close_outcome::timed_out) << end.to_string();
    EXPECT_EQ(end.tls->wait, close_notify_wait::deadline);
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 1500ms);
}

TEST_P(python_peer, expired_server_certificate_fails_verification) {
    test::cert_dir old(true);
    python_server py("echo-unwrap", old, ver());
    auto c = connect_to(py, old.cert, GetParam());
    auto hs = c.handshake(deadline::after(5s));
    ASSERT_FALSE(hs);
    EXPECT_EQ(hs.error().code, errc::tls_verify_failed);
    EXPECT_TRUE(has(hs.error().detail, "certificate has expired")) << hs.error().detail;
    EXPECT_EQ(c.close().outcome, close_outcome::tls_error);
}

// Python as the client: it sends close_notify first (unwrap) and waits for ours.
TEST_P(python_peer, we_answer_the_clients_close_notify) {
    auto l = test::make_listener();
    const auto port = l.local_endpoint().port();
    test::peer_process py({"python3", test::tls_peer_script(), "client-first-notify", d.cert, d.key,
                           ver(), std::to_string(port)});
    auto sock = l.accept(deadline::after(5s)).value();
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    auto st = tls_stream::server(std::move(sock), tls_context::server(s).value()).value();
    ASSERT_TRUE(st.handshake(deadline::after(5s)));
    std::string got;
    EXPECT_TRUE(st.read_to_end(got, deadline::after(5s)));
    EXPECT_EQ(got, "request from python\n");
    EXPECT_TRUE(st.close_notify_received());
    const auto end = st.close_gracefully();
    EXPECT_EQ(end.outcome, close_outcome::clean) << end.to_string();
    std::string out;
    EXPECT_EQ(py.wait(out), 0);
    EXPECT_TRUE(has(out, "unwrap-ok")) << out;
}

INSTANTIATE_TEST_SUITE_P(tls, python_peer,
                         testing::Values(tls_version::tls1_2, tls_version::tls1_3),
                         [](const auto& i) {
                             return i.param == tls_version::tls1_3 ? "tls13" : "tls12";
                         });

}  // namespace
}  // namespace orderly
