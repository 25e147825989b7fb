// The Python tutorial's half-close client: send a request, shutdown(write) to say "done sending",
// keep reading the reply until the server's EOF. Over IPv4, IPv6 and a Unix path.

#include <gtest/gtest.h>

#include <thread>

#include "orderly/orderly.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;
using test::transport;

class half_close : public testing::TestWithParam<transport> {};

TEST_P(half_close, request_eof_reply_eof) {
    if (GetParam() == transport::tcp6 && !test::ipv6_available()) GTEST_SKIP() << "no IPv6";
    listener l = test::make_listener(GetParam());
    ASSERT_TRUE(l.is_open());

    close_report server_report;
    std::thread server([&] {
        auto s = l.accept(deadline::after(5s));
        ASSERT_TRUE(s);
        std::string request;
        // The server only knows the request is complete when the client half-closes.
        ASSERT_TRUE(s->read_to_end(request, deadline::after(5s)).has_value());
        EXPECT_TRUE(s->peer_eof_seen());
        EXPECT_TRUE(s->can_write()) << "peer EOF must not end our direction";
        ASSERT_TRUE(s->send_all("reply to: " + request, deadline::after(5s)).has_value());
        server_report = s->close_gracefully({.timeout = 5s});
    });

    auto c = stream_socket::connect(l.local_endpoint(), 5s);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_all("Hello, server").has_value());
    ASSERT_TRUE(c->shutdown(shut::write));
    std::string reply;
    auto r = c->read_to_end(reply, deadline::after(5s));
    EXPECT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(reply, "reply to: Hello, server");
    auto client_report = c->close();
    server.join();

    EXPECT_EQ(client_report.outcome, close_outcome::clean) << client_report.to_string();
    EXPECT_EQ(server_report.outcome, close_outcome::clean) << server_report.to_string();
    EXPECT_EQ(server_report.bytes_received, 13U);
    EXPECT_EQ(server_report.bytes_drained, 0U);
}

INSTANTIATE_TEST_SUITE_P(transports, half_close,
                         testing::Values(transport::tcp4, transport::tcp6, transport::unix_path),
                         [](const auto& param_info) { return test::to_string(param_info.param); });

}  // namespace
}  // namespace orderly
