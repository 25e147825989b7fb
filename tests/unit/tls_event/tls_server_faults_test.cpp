// server over TLS against peers that misbehave: silence or half a ClientHello (the handshake
// timeout), a bare FIN after data (tls_truncated), a client that does not read (bounded memory),
// garbage instead of a ClientHello, RST mid-handshake and mid-stream, a client that vanishes, a
// stop while a handshake is pending. on_open never runs for a handshake that did not finish.
// Every test is checked for descriptor leaks by the test main. Both backends.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "orderly/core/errc.hpp"
#include "orderly/net/socket_options.hpp"
#include "tls_served.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// Reads whatever arrives until the peer pauses for `quiet` (a handshake flight); the bytes read.
std::size_t read_flight(int fd, std::chrono::milliseconds quiet = 200ms) {
    std::size_t total = 0;
    char buf[16384];
    for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
    }
    return total;
}

// The first flight of a real TLS client, made by a client tls_filter.
std::string client_hello(const tls_context& ctx) {
    auto f = tls_filter::client(ctx, "localhost").value();
    f->start();
    const auto ch = f->take_ciphertext();
    return {reinterpret_cast<const char*>(ch.data()), ch.size()};
}

// Drives a client tls_filter over a blocking socket until the handshake is done.
bool hand_driven_handshake(tls_filter& f, int fd) {
    f.start();
    for (int round = 0; round < 100 && !f.handshake_done(); ++round) {
        const auto out = f.take_ciphertext();
        if (!out.empty() && !test::send_all(fd, out.data(), out.size())) return false;
        std::byte buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || !f.feed(std::span<const std::byte>(buf, static_cast<std::size_t>(n)))) {
            return false;
        }
    }
    const auto fin = f.take_ciphertext();  // the client's Finished
    return f.handshake_done() && (fin.empty() || test::send_all(fd, fin.data(), fin.size()));
}

void expect_handshake_timeout(const test::server_end& e) {
    EXPECT_EQ(e.report.outcome, close_outcome::timed_out) << e.report.to_string();
    EXPECT_EQ(e.fired, timeout_kind::handshake);
    EXPECT_FALSE(e.opened) << "on_open without a handshake";
    ASSERT_TRUE(e.report.tls.has_value());
    EXPECT_TRUE(e.report.tls->version.empty());
    EXPECT_NE(e.report.tls->detail.find("handshake_timeout"), std::string::npos)
        << e.report.tls->detail;
}

TEST(tls_server_faults, silent_client_and_half_a_client_hello_hit_the_handshake_timeout) {
    test::tls_served ts;
    server_options opts;
    opts.connection.handshake_timeout = 200ms;
    ts.start(test::tls_echo(), opts);
    const auto started = clock::now();
    auto silent = ts.raw_client();
    auto partial = ts.raw_client();
    const std::string hello = client_hello(ts.client_ctx());
    ASSERT_GT(hello.size(), 20U);
    ASSERT_TRUE(test::send_all(partial.get(), hello.data(), hello.size() / 2));
    ASSERT_TRUE(ts.wait_ends(2));
    EXPECT_GE(clock::now() - started, 200ms);
    for (const auto& e : ts.snapshot())
        expect_handshake_timeout(e);
    EXPECT_EQ(ts.opened.load(), 0);
}

TEST(tls_server_faults, bare_fin_after_data_is_tls_truncated_in_the_servers_report) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto c = ts.client();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    ASSERT_TRUE(c.send_all(std::string_view("partial request"), deadline::after(5s)));
    std::string buf(64, '\0');
    auto r = c.recv(std::span<char>(buf), deadline::after(5s));  // the echo: all was read
    ASSERT_TRUE(r && *r == 15);
    ASSERT_EQ(::shutdown(c.socket().native_handle(), SHUT_WR), 0);  // FIN, no close_notify
    ASSERT_TRUE(ts.wait_ends(1));
    (void)c.abort();
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::tls_truncated) << e.report.to_string();
    EXPECT_EQ(e.report.error, errc::tls_truncated);
    ASSERT_TRUE(e.report.tls.has_value());
    EXPECT_EQ(e.report.tls->wait, close_notify_wait::peer_fin);
    EXPECT_FALSE(e.report.tls->close_notify_received);
    EXPECT_TRUE(e.opened);
}

// The echo's client sends and never reads: reading pauses at the high-water mark, so what each
// connection holds (held plaintext plus ciphertext for the kernel) stays within it plus one read.
TEST(tls_server_faults, client_that_does_not_read_keeps_server_memory_bounded) {
    test::tls_served ts;
    std::atomic<std::size_t> most{0};
    std::atomic<int> above{0};
    connection_callbacks cb;
    cb.on_data = [&](connection& c, std::span<const std::byte> d) {
        (void)c.write(d);
        most = std::max(most.load(), c.buffered_bytes());
    };
    cb.on_backpressure = [&](connection&, bool high) {
        if (high) ++above;
    };
    server_options opts;
    opts.connection.high_water = 256U << 10;
    opts.connection.low_water = 64U << 10;
    ts.start(cb, opts);
    auto c = ts.client();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    const std::string chunk(64U << 10, 'x');
    std::uint64_t sent = 0;
    for (int i = 0; i < 256; ++i) {  // up to 16 MiB, until a send blocks for 300 ms
        auto r = c.send_all(chunk, deadline::after(300ms));
        sent += r.bytes;
        if (!r) break;
    }
    EXPECT_GE(above.load(), 1) << "the echo crossed the high-water mark";
    EXPECT_LT(sent, 16U << 20) << "the client's sending was never held back";
    // One read's worth over the mark: 64 KiB of ciphertext decrypts to at most that much
    // plaintext, echoed as that plus record overhead.
    EXPECT_LE(most.load(), opts.connection.high_water + (80U << 10)) << "held " << most.load();
    const auto live = ts.srv->connections();
    ASSERT_EQ(live.size(), 1U);
    (void)c.abort();
    ASSERT_TRUE(ts.wait_ends(1));
    EXPECT_EQ(ts.snapshot().at(0).report.outcome, close_outcome::peer_reset);
}

TEST(tls_server_faults, garbage_instead_of_a_client_hello_is_tls_error_with_openssls_reason) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto fd = ts.raw_client();
    const std::string junk = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ASSERT_TRUE(test::send_all(fd.get(), junk.data(), junk.size()));
    ASSERT_TRUE(ts.wait_ends(1));
    // An alert perhaps, then our FIN: we read everything it sent, so no RST.
    EXPECT_GE(test::read_to_eof(fd.get()), 0);
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::tls_error) << e.report.to_string();
    EXPECT_EQ(e.report.error, errc::tls_handshake_failed);
    ASSERT_TRUE(e.report.tls.has_value());
    EXPECT_FALSE(e.report.tls->detail.empty());
    EXPECT_EQ(e.report.tls->detail.find("peer closed"), std::string::npos)
        << "OpenSSL's reason, not a guess: " << e.report.tls->detail;
    EXPECT_FALSE(e.opened);
}

TEST(tls_server_faults, rst_mid_handshake_is_peer_reset_without_on_open) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto fd = ts.raw_client();
    const std::string hello = client_hello(ts.client_ctx());
    ASSERT_TRUE(test::send_all(fd.get(), hello.data(), hello.size()));
    ASSERT_GT(read_flight(fd.get()), 0U) << "the server's first flight";
    ASSERT_TRUE(set_linger(fd.get(), std::chrono::seconds(0)));
    fd.reset();  // RST
    ASSERT_TRUE(ts.wait_ends(1));
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::peer_reset) << e.report.to_string();
    EXPECT_FALSE(e.opened);
}

TEST(tls_server_faults, rst_mid_stream_is_peer_reset) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto c = ts.client();
    ASSERT_TRUE(c.handshake(deadline::after(5s)));
    ASSERT_TRUE(c.send_all(std::string_view("some data"), deadline::after(5s)));
    std::string buf(64, '\0');
    ASSERT_TRUE(c.recv(std::span<char>(buf), deadline::after(5s)));
    (void)c.abort();
    ASSERT_TRUE(ts.wait_ends(1));
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::peer_reset) << e.report.to_string();
    EXPECT_TRUE(e.opened);
}

// A client that goes away mid-handshake without a word (its socket closed, all read): the
// server's report says the TCP end came during the handshake.
TEST(tls_server_faults, client_vanishing_mid_handshake_is_tls_error) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto fd = ts.raw_client();
    const std::string hello = client_hello(ts.client_ctx());
    ASSERT_TRUE(test::send_all(fd.get(), hello.data(), hello.size()));
    ASSERT_GT(read_flight(fd.get()), 0U);
    fd.reset();  // FIN: nothing unread
    ASSERT_TRUE(ts.wait_ends(1));
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::tls_error) << e.report.to_string();
    EXPECT_EQ(e.report.error, errc::tls_handshake_failed);
    ASSERT_TRUE(e.report.tls.has_value());
    EXPECT_NE(e.report.tls->detail.find("during the handshake"), std::string::npos)
        << e.report.tls->detail;
    EXPECT_FALSE(e.opened);
}

// A client that vanishes while the server streams to it: its kernel resets what it never read.
TEST(tls_server_faults, client_vanishing_with_our_data_unread_is_peer_reset) {
    test::tls_served ts;
    connection_callbacks cb;
    cb.on_open = [](connection& c) { (void)c.write(std::string(256U << 10, 'z')); };
    ts.start(cb);
    auto fd = ts.raw_client();
    auto f = tls_filter::client(ts.client_ctx(), "localhost").value();
    ASSERT_TRUE(hand_driven_handshake(*f, fd.get()));
    int unread = 0;
    ASSERT_TRUE(
        test::wait_for([&] { return ::ioctl(fd.get(), FIONREAD, &unread) == 0 && unread > 0; }));
    fd.reset();  // gone, as a crashed process's socket: its kernel resets the unread data
    ASSERT_TRUE(ts.wait_ends(1));
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::peer_reset) << e.report.to_string();
}

// A stop while a handshake is pending: no TLS end exists to send yet, so the connection is
// aborted at once, and its report says so (not clean, not a timeout).
TEST(tls_server_faults, stop_during_a_handshake_aborts_it_and_says_why) {
    test::tls_served ts;
    ts.start(test::tls_echo());
    auto fd = ts.raw_client();
    ASSERT_TRUE(test::wait_for([&] { return ts.srv->counts()[0] == 1; }));
    const auto summary = ts.srv->stop_gracefully(deadline::after(5s));
    EXPECT_EQ(summary.count(close_outcome::aborted), 1U) << summary.to_string();
    ASSERT_TRUE(ts.wait_ends(1));
    const auto e = ts.snapshot().at(0);
    EXPECT_EQ(e.report.outcome, close_outcome::aborted) << e.report.to_string();
    EXPECT_EQ(e.report.method, close_method::graceful);
    ASSERT_TRUE(e.report.tls.has_value());
    EXPECT_NE(e.report.tls->detail.find("during the TLS handshake"), std::string::npos)
        << e.report.tls->detail;
    EXPECT_FALSE(e.opened);
    EXPECT_EQ(test::read_to_eof(fd.get()), -ECONNRESET);
}

}  // namespace
}  // namespace orderly
