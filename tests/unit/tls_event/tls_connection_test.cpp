// connection over tls_filter (TLS on the event layer) against a blocking tls_stream and Python's
// ssl: plaintext both ways, the close_notify half-close, truncation, the handshake timeout, the
// orderly end both ways. Runs on each backend (ORDERLY_BACKEND), like unit_event.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "orderly/event/connection.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/tls/tls_filter.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "unit/event/event_test_util.hpp"
#include "unit/tls/tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

tls_context server_ctx(const test::cert_dir& d) {
    tls_server_config s;
    s.cert_file = d.cert;
    s.key_file = d.key;
    return tls_context::server(s).value();
}

tls_context client_ctx(const test::cert_dir& d) {
    tls_client_config c;
    c.ca_file = d.cert;
    return tls_context::client(c).value();
}

// The server side: an orderly TLS connection on a loop thread, and what it saw.
struct tls_server {
    test::loop_thread lt;
    std::mutex m;
    std::string received;
    std::optional<close_report> report;
    std::atomic<int> peer_eofs{0};
    timeout_kind fired = timeout_kind::none;
    connection_ptr conn;

    // echo: write back what arrives; on the peer's close_notify, shutdown_write().
    void adopt(unique_fd fd, const tls_context& ctx, bool echo, connection_options opts = {}) {
        auto cb = std::make_shared<connection_callbacks>();
        cb->on_data = [this, echo](connection& c, std::span<const std::byte> d) {
            {
                std::lock_guard<std::mutex> g(m);
                received.append(reinterpret_cast<const char*>(d.data()), d.size());
            }
            if (echo) (void)c.write(d);
        };
        cb->on_peer_eof = [this](connection& c) {
            ++peer_eofs;
            c.shutdown_write();
        };
        cb->on_closed = [this](connection& c, const close_report& r) {
            std::lock_guard<std::mutex> g(m);
            fired = c.timeout_fired();
            report = r;
        };
        lt.sync([&] {
            auto f = tls_filter::server(ctx);
            ASSERT_TRUE(f) << f.error().message();
            auto c = connection::adopt(lt.lp, std::move(fd), std::move(*f), cb, opts);
            ASSERT_TRUE(c) << c.error().message();
            conn = *c;
        });
    }
    bool closed() {
        return test::wait_for([this] {
            std::lock_guard<std::mutex> g(m);
            return report.has_value();
        });
    }
};

tls_stream tls_client(unique_fd fd, const tls_context& ctx) {
    auto c = tls_stream::client(stream_socket(std::move(fd)), ctx, "localhost");
    EXPECT_TRUE(c) << c.error().message();
    return std::move(*c);
}

TEST(tls_connection, echo_half_close_every_byte_clean_both_ends) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d);
    auto p = test::make_tcp_pair();
    tls_server srv;
    srv.adopt(std::move(p.server), sctx, true);
    auto c = tls_client(std::move(p.client), cctx);
    auto hs = c.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    std::string request;
    for (int i = 0; i < 100000; ++i)
        request.push_back(static_cast<char>('a' + i % 26));
    ASSERT_TRUE(c.send_all(request, deadline::after(5s)));
    ASSERT_TRUE(c.shutdown(shut::write));  // close_notify, then FIN
    std::string echo;
    auto r = c.read_to_end(echo, deadline::after(5s));
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(echo, request);
    EXPECT_TRUE(c.close_notify_received());
    const close_report client_end = c.close_gracefully();
    EXPECT_EQ(client_end.outcome, close_outcome::clean) << client_end.to_string();

    ASSERT_TRUE(srv.closed());
    std::lock_guard<std::mutex> g(srv.m);
    EXPECT_EQ(srv.received, request);
    EXPECT_EQ(srv.peer_eofs.load(), 1);
    const close_report& s = *srv.report;
    EXPECT_EQ(s.outcome, close_outcome::clean) << s.to_string();
    // TCP bytes, as tls_stream's report counts them: the plaintext plus the records' overhead.
    EXPECT_GT(s.bytes_received, request.size());
    EXPECT_GT(s.bytes_sent, request.size());
    ASSERT_TRUE(s.tls.has_value());
    EXPECT_TRUE(s.tls->close_notify_sent);
    EXPECT_TRUE(s.tls->close_notify_received);
    EXPECT_EQ(s.tls->wait, close_notify_wait::received);
    EXPECT_FALSE(s.tls->version.empty());
    EXPECT_TRUE(s.fin_sent);
    EXPECT_TRUE(s.peer_eof);
}

TEST(tls_connection, fin_without_close_notify_is_tls_truncated) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d);
    auto p = test::make_tcp_pair();
    tls_server srv;
    srv.adopt(std::move(p.server), sctx, false);
    auto c = tls_client(std::move(p.client), cctx);
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    ASSERT_TRUE(c.send_all(std::string_view("partial"), deadline::after(5s)));
    // A bare TCP FIN: what a cut connection (or an attacker) looks like.
    ASSERT_EQ(::shutdown(c.socket().native_handle(), SHUT_WR), 0);
    ASSERT_TRUE(srv.closed());
    (void)c.close();
    std::lock_guard<std::mutex> g(srv.m);
    const close_report& s = *srv.report;
    EXPECT_EQ(s.outcome, close_outcome::tls_truncated) << s.to_string();
    EXPECT_EQ(srv.received, "partial");
    EXPECT_EQ(srv.peer_eofs.load(), 0);  // a FIN without close_notify is not the peer's end
    ASSERT_TRUE(s.tls.has_value());
    EXPECT_FALSE(s.tls->close_notify_received);
    EXPECT_EQ(s.tls->wait, close_notify_wait::peer_fin);
    EXPECT_TRUE(s.peer_eof);
}

TEST(tls_connection, client_that_stops_after_client_hello_hits_the_handshake_timeout) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d);
    auto p = test::make_tcp_pair();
    tls_server srv;
    connection_options opts;
    opts.handshake_timeout = 200ms;
    const auto started = clock::now();
    srv.adopt(std::move(p.server), sctx, false, opts);
    auto hello = tls_filter::client(cctx, "localhost").value();
    hello->start();
    const auto ch = hello->take_ciphertext();
    ASSERT_FALSE(ch.empty());
    ASSERT_EQ(::send(p.client.get(), ch.data(), ch.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(ch.size()));
    ASSERT_TRUE(srv.closed());  // and nothing more from us
    const auto took = clock::now() - started;
    std::lock_guard<std::mutex> g(srv.m);
    EXPECT_EQ(srv.fired, timeout_kind::handshake);
    EXPECT_EQ(srv.report->outcome, close_outcome::timed_out) << srv.report->to_string();
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 5s);
    ASSERT_TRUE(srv.report->tls.has_value());
    EXPECT_TRUE(srv.report->tls->version.empty());
}

TEST(tls_connection, server_close_gracefully_sends_close_notify_then_fin_and_ends_clean) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d);
    auto p = test::make_tcp_pair();
    tls_server srv;
    srv.adopt(std::move(p.server), sctx, false);
    auto c = tls_client(std::move(p.client), cctx);
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    ASSERT_TRUE(c.send_all(std::string_view("request"), deadline::after(5s)));
    ASSERT_TRUE(test::wait_for([&] {
        std::lock_guard<std::mutex> g(srv.m);
        return srv.received == "request";
    }));
    srv.lt.sync([&] {
        (void)srv.conn->write(std::string_view("reply"));
        srv.conn->close_gracefully(5s);
    });
    std::string got;
    auto r = c.read_to_end(got, deadline::after(5s));  // ends at our close_notify
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(got, "reply");
    EXPECT_TRUE(c.close_notify_received());
    const close_report client_end = c.close_gracefully();
    EXPECT_EQ(client_end.outcome, close_outcome::clean) << client_end.to_string();
    ASSERT_TRUE(srv.closed());
    std::lock_guard<std::mutex> g(srv.m);
    EXPECT_EQ(srv.report->outcome, close_outcome::clean) << srv.report->to_string();
    EXPECT_EQ(srv.report->method, close_method::graceful);
    ASSERT_TRUE(srv.report->tls.has_value());
    EXPECT_TRUE(srv.report->tls->close_notify_sent);
    EXPECT_TRUE(srv.report->tls->close_notify_received);
}

TEST(tls_connection, python_ssl_client_unwraps_and_sees_our_close_notify) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto l = listener::listen(endpoint::ipv4_loopback(0)).value();
    const std::string port = std::to_string(l.local_endpoint().port());
    test::peer_process py(
        {"python3", test::tls_peer_script(), "client-first-notify", d.cert, d.key, "1.3", port});
    auto accepted = l.accept(deadline::after(10s));
    ASSERT_TRUE(accepted) << accepted.error().message();
    unique_fd fd = accepted->release();
    tls_server srv;
    srv.adopt(std::move(fd), sctx, false);
    EXPECT_EQ(py.line(), "unwrap-ok");  // our close_notify answered theirs
    std::string rest;
    EXPECT_EQ(py.wait(rest), 0) << rest;
    EXPECT_EQ(rest.find("raw-error"), std::string::npos) << rest;
    ASSERT_TRUE(srv.closed());
    std::lock_guard<std::mutex> g(srv.m);
    EXPECT_EQ(srv.received, "request from python\n");
    EXPECT_EQ(srv.report->outcome, close_outcome::clean) << srv.report->to_string();
    EXPECT_TRUE(srv.report->tls->close_notify_received);
}

// An echo that pauses reading on every write (high_water 0: on io_uring a write stays buffered
// until its send completes): records decrypted while paused must be delivered at the resume, and
// the last data, the close_notify and the FIN arriving together must not read as a truncation.
// Before the fix the resume only re-armed the socket: on io_uring the echo stalled mid-stream,
// or the server answered with a bare FIN (tls_truncated).
TEST(tls_connection, echo_that_pauses_on_every_write_gets_every_byte_and_the_close_notify) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d);
    connection_options opts;
    opts.high_water = 0;
    opts.low_water = 0;
    for (const std::size_t size : {std::size_t{100}, std::size_t{20000}, std::size_t{200000}}) {
        auto p = test::make_tcp_pair();
        tls_server srv;
        srv.adopt(std::move(p.server), sctx, true, opts);
        auto c = tls_client(std::move(p.client), cctx);
        ASSERT_TRUE(c.handshake(deadline::after(5s)));
        std::string request;
        for (std::size_t i = 0; i < size; ++i)
            request.push_back(static_cast<char>('a' + i % 26));
        // Data, close_notify and FIN back to back: they reach the server together.
        ASSERT_TRUE(c.send_all(request, deadline::after(5s)));
        ASSERT_TRUE(c.shutdown(shut::write));
        std::string echo;
        auto r = c.read_to_end(echo, deadline::after(10s));
        EXPECT_TRUE(r) << size << ": " << r.error().message();
        EXPECT_EQ(echo.size(), request.size()) << size;
        EXPECT_TRUE(echo == request) << size;
        EXPECT_TRUE(c.close_notify_received()) << size;
        EXPECT_EQ(c.close_gracefully().outcome, close_outcome::clean) << size;
        ASSERT_TRUE(srv.closed()) << size;
        std::lock_guard<std::mutex> g(srv.m);
        EXPECT_EQ(srv.report->outcome, close_outcome::clean)
            << size << ": " << srv.report->to_string();
        EXPECT_EQ(srv.peer_eofs.load(), 1) << size;
    }
}

}  // namespace
}  // namespace orderly
