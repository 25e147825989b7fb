// connection over tls_filter, continued: the client side, writes held for the handshake and the
// water marks, a failed handshake. Runs on each backend (ORDERLY_BACKEND).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/event/connection.hpp"
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

tls_context client_ctx(const std::string& ca) {
    tls_client_config c;
    c.ca_file = ca;
    return tls_context::client(c).value();
}

struct seen {
    std::mutex m;
    std::string data;
    std::optional<close_report> report;
    std::atomic<int> peer_eofs{0};
    std::atomic<int> above{0};
    std::atomic<int> below{0};
    std::size_t buffered_at_high = 0;
    bool closed() {
        return test::wait_for([this] {
            std::lock_guard<std::mutex> g(m);
            return report.has_value();
        });
    }
};

std::shared_ptr<connection_callbacks> recording(seen& s) {
    auto cb = std::make_shared<connection_callbacks>();
    cb->on_data = [&s](connection&, std::span<const std::byte> d) {
        std::lock_guard<std::mutex> g(s.m);
        s.data.append(reinterpret_cast<const char*>(d.data()), d.size());
    };
    cb->on_peer_eof = [&s](connection&) { ++s.peer_eofs; };
    cb->on_backpressure = [&s](connection& c, bool high) {
        if (high) {
            s.buffered_at_high = c.buffered_bytes();
            ++s.above;
        } else {
            ++s.below;
        }
    };
    cb->on_closed = [&s](connection&, const close_report& r) {
        std::lock_guard<std::mutex> g(s.m);
        s.report = r;
    };
    return cb;
}

// Our side as the TLS client: what the caller of adopt() writes (and its shutdown_write)
// before the handshake waits for it, then goes in order: request, close_notify, FIN. on_open
// runs once, after the handshake (the server authenticated), not at adopt().
TEST(tls_connection, client_side_writes_before_the_handshake_then_half_closes_clean) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d.cert);
    auto p = test::make_tcp_pair();
    seen s;
    auto cb = recording(s);
    std::atomic<int> opened{0};
    std::atomic<bool> open_after_handshake{false};
    cb->on_open = [&](connection& c) {
        ++opened;
        open_after_handshake = c.filter() != nullptr && c.filter()->handshake_done();
    };
    test::loop_thread lt;
    lt.sync([&] {
        auto f = tls_filter::client(cctx, "localhost");
        ASSERT_TRUE(f) << f.error().message();
        auto c = connection::adopt(lt.lp, std::move(p.server), std::move(*f), cb);
        ASSERT_TRUE(c);
        EXPECT_EQ(opened.load(), 0) << "on_open before the handshake";
        EXPECT_TRUE((*c)->write(std::string_view("hello over tls")));
        // Held for the handshake and counted (io_uring: the ClientHello's send is in flight).
        EXPECT_GE((*c)->buffered_bytes(), 14U);
        (*c)->shutdown_write();  // the FIN waits behind the held bytes and our close_notify
    });
    auto srv = tls_stream::server(stream_socket(std::move(p.client)), sctx).value();
    auto hs = srv.handshake(deadline::after(5s));
    ASSERT_TRUE(hs) << hs.error().message();
    std::string got;
    auto r = srv.read_to_end(got, deadline::after(5s));
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(got, "hello over tls");
    EXPECT_TRUE(srv.close_notify_received());
    ASSERT_TRUE(srv.send_all(std::string_view("reply"), deadline::after(5s)));
    const close_report server_end = srv.close_gracefully();
    EXPECT_EQ(server_end.outcome, close_outcome::clean) << server_end.to_string();
    ASSERT_TRUE(s.closed());
    std::lock_guard<std::mutex> g(s.m);
    EXPECT_EQ(s.data, "reply");
    EXPECT_EQ(s.peer_eofs.load(), 0) << "half-closed already: the peer's end finishes it";
    EXPECT_TRUE(s.report->peer_eof);
    EXPECT_EQ(s.report->outcome, close_outcome::clean) << s.report->to_string();
    EXPECT_TRUE(s.report->tls->close_notify_sent);
    EXPECT_TRUE(s.report->tls->close_notify_received);
    EXPECT_EQ(opened.load(), 1);
    EXPECT_TRUE(open_after_handshake.load());
}

// The water marks count plaintext held for the handshake plus ciphertext waiting for the
// kernel: 2 MiB written before the handshake crosses a 1 MiB high-water mark at once, and the
// backpressure lifts only once the peer has read it.
TEST(tls_connection, water_marks_count_held_plaintext_and_waiting_ciphertext) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d.cert);
    auto p = test::make_tcp_pair();
    seen s;
    auto cb = recording(s);
    const std::string body(2U << 20, 'w');
    connection_options opts;
    opts.high_water = 1U << 20;
    opts.low_water = 64U << 10;
    test::loop_thread lt;
    lt.sync([&] {
        auto f = tls_filter::server(sctx).value();
        auto c = connection::adopt(lt.lp, std::move(p.server), std::move(f), cb, opts);
        ASSERT_TRUE(c);
        EXPECT_TRUE((*c)->write(body));  // before the handshake: held
        (*c)->shutdown_write();
    });
    EXPECT_EQ(s.above.load(), 1);
    EXPECT_EQ(s.buffered_at_high, body.size());
    EXPECT_EQ(s.below.load(), 0);
    auto c = tls_stream::client(stream_socket(std::move(p.client)), cctx, "localhost").value();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    std::string got;
    auto r = c.read_to_end(got, deadline::after(10s));
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_EQ(got.size(), body.size());
    EXPECT_EQ(got, body);
    EXPECT_TRUE(test::wait_for([&] { return s.below.load() == 1; }));
    const close_report client_end = c.close_gracefully();
    EXPECT_EQ(client_end.outcome, close_outcome::clean) << client_end.to_string();
    ASSERT_TRUE(s.closed());
    std::lock_guard<std::mutex> g(s.m);
    EXPECT_EQ(s.report->outcome, close_outcome::clean) << s.report->to_string();
}

// A client that does not trust our certificate aborts the handshake with an alert: tls_error,
// with OpenSSL's reason in the report, never clean.
TEST(tls_connection, failed_handshake_ends_with_tls_error_and_a_reason) {
    test::cert_dir d;
    test::cert_dir stranger;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(stranger.cert);
    auto p = test::make_tcp_pair();
    seen s;
    auto cb = recording(s);
    std::atomic<int> opened{0};
    cb->on_open = [&opened](connection&) { ++opened; };
    test::loop_thread lt;
    lt.sync([&] {
        auto f = tls_filter::server(sctx).value();
        ASSERT_TRUE(connection::adopt(lt.lp, std::move(p.server), std::move(f), cb));
    });
    auto c = tls_stream::client(stream_socket(std::move(p.client)), cctx, "localhost").value();
    auto hs = c.handshake(deadline::after(5s));
    EXPECT_FALSE(hs);
    (void)c.close();
    ASSERT_TRUE(s.closed());
    std::lock_guard<std::mutex> g(s.m);
    EXPECT_EQ(s.report->outcome, close_outcome::tls_error) << s.report->to_string();
    EXPECT_EQ(s.report->error, errc::tls_handshake_failed);
    ASSERT_TRUE(s.report->tls.has_value());
    EXPECT_FALSE(s.report->tls->detail.empty());
    EXPECT_EQ(opened.load(), 0) << "on_open runs only after a handshake that succeeded";
}

// Drives a client tls_filter over a blocking socket until the handshake is done.
bool hand_driven_handshake(tls_filter& f, int fd) {
    f.start();
    for (int round = 0; round < 100 && !f.handshake_done(); ++round) {
        const auto out = f.take_ciphertext();
        if (!out.empty() && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return false;
        std::byte buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || !f.feed(std::span<const std::byte>(buf, static_cast<std::size_t>(n)))) {
            return false;
        }
    }
    const auto fin = f.take_ciphertext();  // the client's Finished
    return f.handshake_done() &&
           (fin.empty() || ::send(fd, fin.data(), fin.size(), MSG_NOSIGNAL) > 0);
}

// close() after the peer's close_notify but before its FIN: the TCP end looks done from here
// (both "EOFs", nothing unacknowledged), but the peer's TCP end is not: `closed`, never `clean`.
TEST(tls_connection, close_before_the_peers_fin_after_its_close_notify_is_not_clean) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d.cert);
    auto p = test::make_tcp_pair();
    seen s;
    auto cb = recording(s);
    cb->on_peer_eof = [&s](connection& c) {
        ++s.peer_eofs;
        c.shutdown_write();
    };
    test::loop_thread lt;
    connection_ptr conn;
    lt.sync([&] {
        auto f = tls_filter::server(sctx).value();
        conn = connection::adopt(lt.lp, std::move(p.server), std::move(f), cb).value();
    });
    auto client = tls_filter::client(cctx, "localhost").value();
    ASSERT_TRUE(hand_driven_handshake(*client, p.client.get()));
    client->send_close_notify();
    const auto notify = client->take_ciphertext();
    ASSERT_FALSE(notify.empty());
    ASSERT_GT(::send(p.client.get(), notify.data(), notify.size(), MSG_NOSIGNAL), 0);
    ASSERT_TRUE(test::wait_for([&] { return s.peer_eofs.load() == 1; }));
    // Our close_notify and FIN arrive; the client never sends its FIN.
    std::string rest;
    EXPECT_GT(test::read_to_eof(p.client.get(), &rest), 0);
    // Until the client's kernel acknowledged it all (delayed ACKs): nothing is owed at close().
    EXPECT_TRUE(test::wait_for([&] {
        return lt.sync([&] {
            auto info = read_tcp_info(conn->native_handle());
            return info && info->send_queue_bytes == 0;
        });
    }));
    lt.sync([&] {
        EXPECT_TRUE(conn->is_open()) << "the peer's FIN is still to come";
        conn->close();
    });
    ASSERT_TRUE(s.closed());
    std::lock_guard<std::mutex> g(s.m);
    EXPECT_EQ(s.report->outcome, close_outcome::closed) << s.report->to_string();
    EXPECT_TRUE(s.report->tls->close_notify_sent);
    EXPECT_TRUE(s.report->tls->close_notify_received);
}

// A TLS echo peer that sends and never reads: reading pauses at the high-water mark, so what
// the connection holds stays within it plus one record, however much the peer pushes.
TEST(tls_connection, slow_reader_keeps_memory_bounded_by_the_high_water_mark) {
    test::cert_dir d;
    auto sctx = server_ctx(d);
    auto cctx = client_ctx(d.cert);
    auto p = test::make_tcp_pair();
    seen s;
    auto cb = recording(s);
    std::atomic<std::size_t> most{0};
    std::atomic<std::uint64_t> echoed{0};
    cb->on_data = [&](connection& c, std::span<const std::byte> data) {
        (void)c.write(data);
        echoed += data.size();
        most = std::max<std::size_t>(most.load(), c.buffered_bytes());
    };
    connection_options opts;
    opts.high_water = 256U << 10;
    opts.low_water = 64U << 10;
    test::loop_thread lt;
    lt.sync([&] {
        auto f = tls_filter::server(sctx).value();
        ASSERT_TRUE(connection::adopt(lt.lp, std::move(p.server), std::move(f), cb, opts));
    });
    auto c = tls_stream::client(stream_socket(std::move(p.client)), cctx, "localhost").value();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    const std::string chunk(64U << 10, 'x');
    std::uint64_t sent = 0;
    for (int i = 0; i < 256; ++i) {  // up to 16 MiB, until the send blocks for 300 ms
        auto r = c.send_all(chunk, deadline::after(300ms));
        sent += r.bytes;
        if (!r) break;
    }
    EXPECT_GE(s.above.load(), 1) << "the echo crossed the high-water mark";
    EXPECT_LT(sent, 16U << 20) << "the peer's sending was never held back";
    EXPECT_LE(most.load(), opts.high_water + (32U << 10))
        << "held " << most.load() << " B; echoed " << echoed.load() << " of " << sent;
    (void)c.abort();
    ASSERT_TRUE(s.closed());
}

}  // namespace
}  // namespace orderly
