// tls_stream against socat's OPENSSL-LISTEN (a third TLS peer): half-close request/reply through
// `cat`, then the orderly end.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "support/loopback.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

TEST(socat_peer, half_close_echo_through_cat) {
    if (::system("command -v socat >/dev/null 2>&1") != 0) GTEST_SKIP() << "socat not installed";
    test::cert_dir d;
    // A free port: bind, read it, release (socat cannot report an ephemeral port).
    std::uint16_t port = 0;
    {
        auto l = test::make_listener();
        port = l.local_endpoint().port();
    }
    test::peer_process srv({"socat",
                            "OPENSSL-LISTEN:" + std::to_string(port) +
                                ",bind=127.0.0.1,reuseaddr,verify=0,cert=" + d.cert +
                                ",key=" + d.key,
                            "EXEC:cat"});
    result<stream_socket> sock = fail(make_error_code(errc::timed_out));
    for (int i = 0; i < 100 && !sock; ++i) {  // until socat listens (at most ~2 s)
        std::this_thread::sleep_for(20ms);
        sock = stream_socket::connect(endpoint::ipv4_loopback(port), 1s);
    }
    ASSERT_TRUE(sock) << sock.error().message();
    tls_client_config c;
    c.ca_file = d.cert;
    auto t =
        tls_stream::client(std::move(*sock), tls_context::client(c).value(), "127.0.0.1").value();
    auto hs = t.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    const std::string request(50000, 's');
    EXPECT_EQ(t.send_all(request, deadline::after(5s)).bytes, request.size());
    ASSERT_TRUE(t.shutdown(shut::write));
    std::string reply;
    auto r = t.read_to_end(reply, deadline::after(5s));
    EXPECT_EQ(reply, request);
    const auto end = t.close_gracefully();
    // socat ends with SSL_shutdown when cat exits: its close_notify, then its FIN.
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(end.outcome, close_outcome::clean) << end.to_string();
    EXPECT_TRUE(end.tls->close_notify_received);
}

}  // namespace
}  // namespace orderly
