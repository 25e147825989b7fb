#include "orderly/net/stream_socket.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <csignal>
#include <string>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/net/socket_options.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;
using test::make_pair;
using test::transport;

std::string recv_some(stream_socket& s, std::size_t max = 4096) {
    std::string buf(max, '\0');
    auto n = s.recv(std::span<char>(buf), deadline::after(5s));
    if (!n) return "<error: " + n.error().message() + ">";
    buf.resize(*n);
    return buf;
}

TEST(stream_socket, default_constructed_is_not_open) {
    stream_socket s;
    EXPECT_FALSE(s.is_open());
    EXPECT_FALSE(s.can_read());
    EXPECT_FALSE(s.can_write());
    EXPECT_EQ(s.send("x").error(), errc::not_open);
    char b[1];
    EXPECT_EQ(s.recv(std::span<char>(b)).error(), errc::not_open);
    EXPECT_EQ(s.shutdown(shut::write).error(), errc::not_open);
    EXPECT_EQ(s.close().outcome, close_outcome::not_open);
    EXPECT_EQ(s.close_gracefully().outcome, close_outcome::not_open);
}

TEST(stream_socket, descriptors_are_cloexec_and_nonblocking) {
    auto p = make_pair();
    for (stream_socket* s : {&p.client, &p.server}) {
        EXPECT_TRUE(::fcntl(s->native_handle(), F_GETFD) & FD_CLOEXEC);
        EXPECT_TRUE(::fcntl(s->native_handle(), F_GETFL) & O_NONBLOCK);
    }
}

TEST(stream_socket, send_and_recv_count_bytes) {
    auto p = make_pair();
    auto n = p.client.send("hello");
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 5U);
    EXPECT_EQ(recv_some(p.server), "hello");
    EXPECT_EQ(p.client.bytes_sent(), 5U);
    EXPECT_EQ(p.server.bytes_received(), 5U);
}

TEST(stream_socket, recv_with_empty_buffer_is_invalid_argument) {
    auto p = make_pair();
    EXPECT_EQ(p.server.recv(std::span<char>()).error(), errc::invalid_argument);
}

TEST(stream_socket, recv_times_out_at_deadline) {
    auto p = make_pair();
    char b[16];
    const auto t0 = clock::now();
    auto n = p.server.recv(std::span<char>(b), deadline::after(100ms));
    const auto took = clock::now() - t0;
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), errc::timed_out);
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 1s);
}

TEST(stream_socket, eof_is_a_value_and_socket_stays_writable) {
    auto p = make_pair();
    ASSERT_TRUE(p.client.shutdown(shut::write));
    EXPECT_FALSE(p.client.can_write());
    EXPECT_TRUE(p.client.can_read());
    char b[16];
    auto n = p.server.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);
    EXPECT_TRUE(p.server.peer_eof_seen());
    EXPECT_FALSE(p.server.can_read());
    // Half-closed, not over: the server still writes and the client still reads.
    EXPECT_TRUE(p.server.can_write());
    ASSERT_TRUE(p.server.send_all("reply").has_value());
    EXPECT_EQ(recv_some(p.client), "reply");
    // Sending after our own shutdown(write) is refused by the library, not by a signal.
    EXPECT_EQ(p.client.send("late").error(), errc::write_shut);
}

TEST(stream_socket, send_all_reports_exact_bytes_on_timeout) {
    auto p = make_pair();
    (void)set_send_buffer_size(p.client.native_handle(), 4096);
    (void)set_recv_buffer_size(p.server.native_handle(), 4096);
    const std::string big(8 << 20, 'x');
    auto r = p.client.send_all(big, deadline::after(200ms));
    EXPECT_EQ(r.error(), errc::timed_out);
    EXPECT_GT(r.bytes, 0U);
    EXPECT_LT(r.bytes, big.size());
    EXPECT_EQ(p.client.bytes_sent(), r.bytes);
    // Everything the call said went out is readable on the other side.
    std::string got;
    ASSERT_TRUE(p.client.shutdown(shut::write));
    auto rd = p.server.read_to_end(got, deadline::after(5s));
    EXPECT_TRUE(rd.has_value()) << rd.error().message();
    EXPECT_EQ(got.size(), r.bytes);
}

TEST(stream_socket, read_to_end_limit) {
    auto p = make_pair();
    ASSERT_TRUE(p.client.send_all(std::string(100, 'a')).has_value());
    ASSERT_TRUE(p.client.shutdown(shut::write));
    std::string out;
    auto r = p.server.read_to_end(out, deadline::after(5s), 40);
    EXPECT_EQ(r.error(), errc::drain_limit);
    EXPECT_EQ(r.bytes, 40U);
    EXPECT_EQ(out.size(), 40U);
    // What is past the limit stays in the socket.
    std::string rest;
    EXPECT_TRUE(p.server.read_to_end(rest, deadline::after(5s)).has_value());
    EXPECT_EQ(rest.size(), 60U);

    auto q = make_pair();
    ASSERT_TRUE(q.client.send_all(std::string(40, 'a')).has_value());
    ASSERT_TRUE(q.client.shutdown(shut::write));
    std::string exact;
    auto r2 = q.server.read_to_end(exact, deadline::after(5s), 40);
    EXPECT_TRUE(r2.has_value()) << r2.error().message();
    EXPECT_EQ(exact.size(), 40U);
}

TEST(stream_socket, shutdown_read_makes_recv_return_eof) {
    auto p = make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::read));
    EXPECT_FALSE(p.server.can_read());
    EXPECT_TRUE(p.server.can_write());
    char b[8];
    auto n = p.server.recv(std::span<char>(b), deadline::after(1s));
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);
    ASSERT_TRUE(p.server.shutdown(shut::read));  // idempotent
}

TEST(stream_socket, writing_to_a_closed_peer_is_an_error_not_sigpipe) {
    // If MSG_NOSIGNAL were missing, the default SIGPIPE action would kill this test process.
    ASSERT_NE(std::signal(SIGPIPE, SIG_DFL), SIG_ERR);
    auto p = make_pair();
    (void)p.server.abort();
    std::error_code err;
    for (int i = 0; i < 100 && !err; ++i) {
        auto n = p.client.send(std::string(4096, 'z'), deadline::after(1s));
        if (!n) err = n.error();
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(err, errc::peer_reset);
    auto report = p.client.close();
    EXPECT_EQ(report.outcome, close_outcome::peer_reset);
}

TEST(stream_socket, close_is_idempotent_and_reports) {
    auto p = make_pair();
    auto r1 = p.client.close();
    EXPECT_EQ(r1.method, close_method::close);
    EXPECT_EQ(r1.outcome, close_outcome::closed);
    EXPECT_FALSE(p.client.is_open());
    auto r2 = p.client.close();
    EXPECT_EQ(r2.outcome, close_outcome::not_open);
}

TEST(stream_socket, close_with_unread_data_reports_discard_and_peer_sees_reset) {
    auto p = make_pair();
    ASSERT_TRUE(p.client.send_all("unread bytes").has_value());
    // Wait until the bytes sit in the server's receive queue.
    for (int i = 0; i < 500; ++i) {
        auto ti = p.server.tcp_info();
        if (ti && ti->recv_queue_bytes == 12) break;
        std::this_thread::sleep_for(1ms);
    }
    auto r = p.server.close();
    EXPECT_EQ(r.outcome, close_outcome::unread_data_discarded);
    EXPECT_EQ(r.unread_bytes, 12U);
    char b[8];
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_FALSE(n) << "expected RST, got " << *n << " bytes";
    EXPECT_EQ(n.error(), errc::peer_reset);
}

TEST(stream_socket, report_names_the_peer_even_after_a_reset) {
    auto p = make_pair();
    const endpoint server_at = *p.client.peer_endpoint();
    (void)p.server.abort();
    char b[8];
    ASSERT_FALSE(p.client.recv(std::span<char>(b), deadline::after(5s)));  // the reset
    auto r = p.client.close();
    EXPECT_EQ(r.outcome, close_outcome::peer_reset);
    EXPECT_EQ(r.peer, server_at) << r.to_string();
}

TEST(stream_socket, abort_sends_rst) {
    auto p = make_pair();
    auto r = p.server.abort();
    EXPECT_EQ(r.outcome, close_outcome::aborted);
    EXPECT_EQ(r.method, close_method::abort);
    char b[8];
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), errc::peer_reset);
}

TEST(stream_socket, close_gracefully_clean_exchange) {
    auto p = make_pair();
    std::thread peer([&] {
        std::string got;
        auto r = p.client.read_to_end(got, deadline::after(5s));
        EXPECT_TRUE(r.has_value());
        EXPECT_EQ(got, "bye");
        (void)p.client.close();
    });
    ASSERT_TRUE(p.server.send_all("bye").has_value());
    auto r = p.server.close_gracefully({.timeout = 5s, .drain_limit = 1024});
    peer.join();
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_TRUE(r.fin_sent);
    EXPECT_TRUE(r.peer_eof);
    EXPECT_EQ(r.bytes_sent, 3U);
    EXPECT_TRUE(r.orderly());
    ASSERT_TRUE(r.tcp.has_value());
}

TEST(stream_socket, close_gracefully_drains_and_counts) {
    auto p = make_pair();
    ASSERT_TRUE(p.client.send_all(std::string(1000, 'd')).has_value());
    ASSERT_TRUE(p.client.shutdown(shut::write));
    auto r = p.server.close_gracefully({.timeout = 5s, .drain_limit = 4096});
    EXPECT_EQ(r.outcome, close_outcome::clean);
    EXPECT_EQ(r.bytes_drained, 1000U);
    EXPECT_EQ(r.unread_bytes, 0U);
}

TEST(stream_socket, close_gracefully_times_out_and_aborts) {
    auto p = make_pair();  // the client never sends EOF
    const auto t0 = clock::now();
    auto r = p.server.close_gracefully({.timeout = 200ms, .drain_limit = 4096});
    const auto took = clock::now() - t0;
    EXPECT_EQ(r.outcome, close_outcome::timed_out);
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 200ms + 150ms);
    char b[8];
    // The client first reads our FIN (EOF); the abort then resets the connection.
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);
    auto w = p.client.send("x");
    (void)w;
    auto c = p.client.close();
    EXPECT_TRUE(c.outcome == close_outcome::peer_reset || c.outcome == close_outcome::closed)
        << c.to_string();
}

TEST(stream_socket, close_gracefully_drain_limit) {
    auto p = make_pair();
    std::atomic<bool> stop{false};
    std::thread flood([&] {
        const std::string chunk(16384, 'f');
        while (!stop.load()) {
            auto n = p.client.send(chunk, deadline::after(50ms));
            if (!n && n.error() != errc::timed_out) break;
        }
    });
    auto r = p.server.close_gracefully({.timeout = 5s, .drain_limit = 64 * 1024});
    stop = true;
    flood.join();
    EXPECT_EQ(r.outcome, close_outcome::drain_limit);
    EXPECT_GT(r.bytes_drained, 64U * 1024U);
}

TEST(stream_socket, close_gracefully_after_shut_rd_still_waits_for_the_peer_fin) {
    auto p = make_pair();
    ASSERT_TRUE(p.server.shutdown(shut::read));
    // recv() on a SHUT_RD socket returns 0 at once; that must not be taken for the peer's FIN.
    auto early = p.server.close_gracefully({.timeout = 150ms, .drain_limit = 4096});
    EXPECT_EQ(early.outcome, close_outcome::timed_out) << early.to_string();

    auto q = make_pair();
    ASSERT_TRUE(q.server.shutdown(shut::read));
    std::thread peer([&] {
        std::this_thread::sleep_for(50ms);
        (void)q.client.shutdown(shut::write);
    });
    auto r = q.server.close_gracefully({.timeout = 5s, .drain_limit = 4096});
    peer.join();
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
}

TEST(stream_socket, destroy_policy_abort_resets_peer) {
    auto p = make_pair();
    {
        stream_socket doomed = std::move(p.server);
        doomed.set_destroy_policy(destroy_policy::abort);
    }
    char b[8];
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), errc::peer_reset);
}

TEST(stream_socket, destroy_policy_default_is_plain_close) {
    auto p = make_pair();
    EXPECT_EQ(p.server.get_destroy_policy(), destroy_policy::close);
    { stream_socket gone = std::move(p.server); }
    char b[8];
    auto n = p.client.recv(std::span<char>(b), deadline::after(5s));
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0U);  // FIN, not RST: nothing was unread
}

TEST(stream_socket, endpoints_and_release) {
    auto p = make_pair();
    auto local = p.client.local_endpoint();
    auto peer = p.client.peer_endpoint();
    ASSERT_TRUE(local && peer);
    EXPECT_EQ(*peer, *p.server.local_endpoint());
    EXPECT_EQ(*local, *p.server.peer_endpoint());
    unique_fd fd = p.client.release();
    EXPECT_TRUE(fd.valid());
    EXPECT_FALSE(p.client.is_open());
}

TEST(stream_socket, socketpair) {
    auto pr = stream_socket::pair();
    ASSERT_TRUE(pr);
    auto& [a, b] = *pr;
    ASSERT_TRUE(a.send_all("x").has_value());
    EXPECT_EQ(recv_some(b), "x");
    EXPECT_FALSE(a.tcp_info().has_value());  // not TCP
}

TEST(stream_socket, connect_refused_and_timeout) {
    // A port that was just free: bind, read the port, close, connect → refused.
    endpoint free_port;
    {
        auto l = test::make_listener();
        free_port = l.local_endpoint();
    }
    auto r = stream_socket::connect(free_port, 2s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::connection_refused);
}

}  // namespace
}  // namespace orderly
