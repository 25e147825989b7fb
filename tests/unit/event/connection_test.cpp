#include "orderly/event/connection.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "event_test_util.hpp"
#include "orderly/event/registry.hpp"
#include "served.hpp"

using namespace std::chrono_literals;

namespace orderly {
namespace {

connection_callbacks echo() {
    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    cb.on_peer_eof = [](connection& c) { c.shutdown_write(); };
    return cb;
}

TEST_F(served, echo_then_peer_half_close_ends_clean) {
    serve(echo());
    const int fd = pair_.client.get();
    ASSERT_TRUE(test::send_all(fd, "hello", 5));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::string got;
    EXPECT_EQ(test::read_to_eof(fd, &got), 5);
    EXPECT_EQ(got, "hello");
    ASSERT_TRUE(wait_closed());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_TRUE(r.fin_sent);
    EXPECT_TRUE(r.peer_eof);
    EXPECT_EQ(r.bytes_sent, 5U);
    EXPECT_EQ(r.bytes_received, 5U);
    EXPECT_TRUE(r.tcp.has_value());
}

TEST_F(served, peer_half_close_keeps_us_writable_for_8_mib) {
    constexpr std::size_t total = 8U << 20;
    connection_callbacks cb;
    std::atomic<bool> eof_seen{false};
    cb.on_peer_eof = [&](connection& c) {
        eof_seen = true;
        EXPECT_EQ(c.state(), connection_state::half_closed_by_peer);
        std::string chunk(64 * 1024, '\0');
        for (std::size_t off = 0; off < total; off += chunk.size()) {
            for (std::size_t i = 0; i < chunk.size(); ++i)
                chunk[i] = test::pattern_byte(off + i);
            EXPECT_TRUE(c.write(chunk).has_value());
        }
        c.shutdown_write();
    };
    connection_options opts;
    opts.high_water = 16U << 20;  // this test buffers on purpose
    serve(std::move(cb), opts);
    const int fd = pair_.client.get();
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::string got;
    EXPECT_EQ(test::read_to_eof(fd, &got), static_cast<long long>(total));
    bool intact = got.size() == total;
    for (std::size_t i = 0; intact && i < got.size(); ++i)
        intact = got[i] == test::pattern_byte(i);
    EXPECT_TRUE(intact) << "the stream was corrupted";
    ASSERT_TRUE(wait_closed());
    EXPECT_TRUE(eof_seen.load());
    EXPECT_EQ(report().outcome, close_outcome::clean);
    EXPECT_EQ(report().bytes_sent, total);
}

TEST_F(served, a_slow_reader_keeps_our_buffer_bounded_by_the_high_water_mark) {
    constexpr std::size_t high = 256U << 10;
    std::atomic<std::size_t> max_buffered{0};
    std::atomic<int> above{0};
    std::atomic<int> below{0};
    connection_callbacks cb = echo();
    cb.on_data = [&](connection& c, std::span<const std::byte> d) {
        (void)c.write(d);
        if (c.buffered_bytes() > max_buffered) max_buffered = c.buffered_bytes();
    };
    cb.on_backpressure = [&](connection&, bool on) { (on ? above : below)++; };
    connection_options opts;
    opts.high_water = high;
    opts.low_water = 64U << 10;
    serve(std::move(cb), opts);
    const int fd = pair_.client.get();
    constexpr std::size_t total = 16U << 20;
    std::thread writer([&] {
        std::string chunk(64 * 1024, 'x');
        for (std::size_t off = 0; off < total; off += chunk.size()) {
            if (!test::send_all(fd, chunk.data(), chunk.size())) break;
        }
        ::shutdown(fd, SHUT_WR);
    });
    // Read slowly at first, so the server's output piles up against the high-water mark.
    char buf[16384];
    std::size_t got = 0;
    for (int i = 0; i < 100 && got < total; ++i) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
        std::this_thread::sleep_for(2ms);
    }
    const long long rest = test::read_to_eof(fd);
    writer.join();
    EXPECT_EQ(got + static_cast<std::size_t>(std::max(rest, 0LL)), total);
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean);
    EXPECT_GT(above.load(), 0) << "the reader was not slow enough to test anything";
    EXPECT_EQ(above.load(), below.load());
    // One read (64 KiB) may land after the mark is crossed; nothing more.
    EXPECT_LE(max_buffered.load(), high + 64U * 1024);
}

TEST_F(served, on_drained_streams_a_large_body_in_chunks_then_plain_close_loses_nothing) {
    // The streaming pattern: write a chunk, wait for on_drained, write the next; close() only once
    // everything is out (close() itself would drop buffered output).
    constexpr std::size_t chunk = 256U << 10;
    constexpr std::size_t total = 8U << 20;
    auto sent = std::make_shared<std::size_t>(0);
    std::atomic<int> drained_calls{0};
    connection_callbacks cb;
    auto pump = [sent](connection& c) {
        std::string block(chunk, '\0');
        while (*sent < total && c.buffered_bytes() == 0) {
            for (std::size_t i = 0; i < chunk; ++i)
                block[i] = test::pattern_byte(*sent + i);
            if (!c.write(block)) return;
            *sent += chunk;
        }
        if (*sent == total && c.buffered_bytes() == 0) c.close();
    };
    cb.on_open = pump;
    cb.on_drained = [&, pump](connection& c) {
        ++drained_calls;
        pump(c);
    };
    serve(std::move(cb));
    std::string got;
    const long long n = test::read_to_eof(pair_.client.get(), &got);
    ASSERT_EQ(n, static_cast<long long>(total));
    bool intact = true;
    for (std::size_t i = 0; intact && i < got.size(); ++i)
        intact = got[i] == test::pattern_byte(i);
    EXPECT_TRUE(intact);
    ASSERT_TRUE(wait_closed());
    EXPECT_GT(drained_calls.load(), 0) << "the kernel took 8 MiB at once: nothing was tested";
    EXPECT_EQ(report().outcome, close_outcome::closed);
    EXPECT_EQ(report().bytes_sent, total);
}

TEST_F(served, idle_timeout_fires_and_aborts) {
    connection_options opts;
    opts.idle_timeout = 100ms;
    serve({}, opts);
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::idle);
    char c;
    EXPECT_EQ(::recv(pair_.client.get(), &c, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
}

TEST_F(served, idle_timeout_is_pushed_back_by_activity) {
    connection_options opts;
    opts.idle_timeout = 150ms;
    serve(echo(), opts);
    for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(50ms);
        ASSERT_TRUE(test::send_all(pair_.client.get(), "x", 1));
        char c;
        ASSERT_EQ(::recv(pair_.client.get(), &c, 1, 0), 1);
    }
    EXPECT_EQ(closed_count_.load(), 0) << "timed out despite traffic every 50 ms";
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::idle);
}

TEST_F(served, lifetime_timeout_is_not_pushed_back_by_activity) {
    connection_options opts;
    opts.idle_timeout = 150ms;
    opts.lifetime_timeout = 400ms;
    serve(echo(), opts);
    const auto started = clock::now();
    int echoed = 0;
    for (int i = 0; i < 40 && closed_count_.load() == 0; ++i) {  // at most 2 s of traffic
        std::this_thread::sleep_for(50ms);
        if (!test::send_all(pair_.client.get(), "x", 1)) break;
        char c;
        if (::recv(pair_.client.get(), &c, 1, 0) == 1) ++echoed;
    }
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::lifetime);
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(report().method, close_method::abort);
    EXPECT_GE(echoed, 4) << "traffic every 50 ms should have kept the idle timer away";
    EXPECT_GE(report().lifetime, 400ms);
    EXPECT_LT(clock::now() - started, 2s);
}

TEST_F(served, lifetime_timeout_also_bounds_close_gracefully) {
    connection_options opts;
    opts.lifetime_timeout = 300ms;
    serve({}, opts);
    lt_.sync([&] { conn_->close_gracefully(5s, 1U << 20); });  // the peer never sends EOF
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::lifetime);
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(report().method, close_method::graceful);
    EXPECT_LT(report().close_duration, 1s) << "the 5 s close deadline ended it, not the lifetime";
}

TEST_F(served, read_timeout_fires_when_nothing_arrives) {
    connection_options opts;
    opts.read_timeout = 100ms;
    serve({}, opts);
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::read);
}

TEST_F(served, write_timeout_fires_when_the_peer_does_not_read) {
    connection_options opts;
    opts.write_timeout = 150ms;
    opts.high_water = 64U << 20;
    connection_callbacks cb;
    cb.on_open = [](connection& c) {
        std::string chunk(1U << 20, 'w');
        for (int i = 0; i < 32; ++i)
            (void)c.write(chunk);  // far more than the socket buffers
    };
    serve(std::move(cb), opts);
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::write);
    EXPECT_GT(report().unacked_bytes, 0U);
}

TEST_F(served, close_gracefully_times_out_when_the_peer_never_sends_eof) {
    serve({});
    lt_.sync([&] { conn_->close_gracefully(100ms, 1U << 20); });
    EXPECT_EQ(lt_.sync([&] { return conn_->state(); }), connection_state::closing);
    char c;
    EXPECT_EQ(::recv(pair_.client.get(), &c, 1, 0), 0) << "our FIN should arrive first";
    ASSERT_TRUE(wait_closed(5s));
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(report().method, close_method::graceful);
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::close);
    EXPECT_GE(report().close_duration, 100ms);
}

TEST_F(served, close_gracefully_drains_the_peer_and_ends_clean) {
    serve({});
    const int fd = pair_.client.get();
    lt_.sync([&] { conn_->pause_reading(); });
    ASSERT_TRUE(test::send_all(fd, "unread request", 14));
    std::this_thread::sleep_for(20ms);  // it reaches our receive queue, never read by the app
    lt_.sync([&] { conn_->close_gracefully(5s, 1U << 20); });
    EXPECT_EQ(test::read_to_eof(fd), 0);
    ASSERT_TRUE(test::send_all(fd, "late bytes", 10));  // after our FIN: drained, no RST
    ::shutdown(fd, SHUT_WR);
    ASSERT_TRUE(wait_closed());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::clean) << r.to_string();
    EXPECT_EQ(r.bytes_drained, 24U);
}

TEST_F(served, close_gracefully_aborts_past_the_drain_limit) {
    serve({});
    lt_.sync([&] { conn_->close_gracefully(5s, 1000); });
    std::string junk(4096, 'j');
    (void)test::send_all(pair_.client.get(), junk.data(), junk.size());
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::drain_limit);
    EXPECT_GT(report().bytes_drained, 1000U);
}

TEST_F(served, peer_reset_is_reported) {
    serve(echo());
    linger lg{1, 0};
    ::setsockopt(pair_.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    pair_.client.reset();
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::peer_reset) << report().to_string();
}

TEST_F(served, close_with_unread_data_says_so) {
    serve({});
    lt_.sync([&] { conn_->pause_reading(); });
    ASSERT_TRUE(test::send_all(pair_.client.get(), "never read", 10));
    std::this_thread::sleep_for(20ms);
    lt_.sync([&] { conn_->close(); });
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::unread_data_discarded);
    EXPECT_EQ(report().unread_bytes, 10U);
}

TEST_F(served, abort_sends_rst) {
    serve({});
    lt_.sync([&] { conn_->abort(); });
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::aborted);
    char c;
    EXPECT_EQ(::recv(pair_.client.get(), &c, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
    EXPECT_FALSE(lt_.sync([&] { return conn_->write(std::string_view("x")).has_value(); }));
}

TEST_F(served, ending_twice_or_from_inside_a_callback_still_calls_on_closed_once) {
    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte>) {
        c.abort();
        c.close();
        c.close_gracefully(1s);
        c.shutdown_write();
        EXPECT_FALSE(c.write(std::string_view("x")).has_value());
    };
    cb.on_closed = [](connection& c, const close_report&) {
        c.abort();  // already closed: no second report
    };
    serve(std::move(cb));
    ASSERT_TRUE(test::send_all(pair_.client.get(), "go", 2));
    ASSERT_TRUE(wait_closed());
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(report().outcome, close_outcome::aborted);
}

TEST_F(served, shutdown_write_then_peer_eof_ends_clean_and_states_follow) {
    serve({});
    EXPECT_EQ(lt_.sync([&] { return registry_.counts()[0]; }), 1U);
    lt_.sync([&] {
        EXPECT_TRUE(conn_->write(std::string_view("bye")).has_value());
        conn_->shutdown_write();
    });
    EXPECT_EQ(lt_.sync([&] { return conn_->state(); }), connection_state::half_closed_by_us);
    EXPECT_EQ(registry_.counts()[static_cast<std::size_t>(connection_state::half_closed_by_us)],
              1U);
    std::string got;
    EXPECT_EQ(test::read_to_eof(pair_.client.get(), &got), 3);
    ::shutdown(pair_.client.get(), SHUT_WR);
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean);
}

TEST_F(served, close_wait_detector_reports_a_connection_left_half_closed) {
    std::atomic<int> reported{0};
    connection_callbacks cb;
    cb.on_close_wait = [&](connection& c) {
        EXPECT_EQ(c.state(), connection_state::half_closed_by_peer);
        reported++;
    };
    connection_options opts;
    opts.close_wait_after = 80ms;
    serve(std::move(cb), opts);
    ::shutdown(pair_.client.get(), SHUT_WR);
    ASSERT_TRUE(test::wait_for([&] { return reported.load() > 0; }, 5s));
    EXPECT_EQ(registry_.counts()[static_cast<std::size_t>(connection_state::half_closed_by_peer)],
              1U);
    const auto snap = lt_.sync([&] { return registry_.snapshot(); });
    ASSERT_EQ(snap.size(), 1U);
    EXPECT_GE(snap[0].in_state, 80ms);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(reported.load(), 1) << "reported once per connection";
    lt_.sync([&] { conn_->shutdown_write(); });
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean);
}

// --- Review: callbacks that end connections, timers, EPOLLHUP/EPOLLERR, graceful close. ---

// CPU time of the calling thread (to tell a sleeping loop from a spinning one).
std::chrono::microseconds thread_cpu() {
    rusage ru{};
    ::getrusage(RUSAGE_THREAD, &ru);
    return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Two connections become readable in the same epoll_wait batch. The first one served closes the
// other and adopts a newcomer, which gets the closed descriptor's number. The closed connection's
// event, still in the batch, must reach nobody: neither the closed connection nor the newcomer.
TEST(connection_batch, ending_another_connection_mid_batch_and_reusing_its_number_is_safe) {
    test::loop_thread lt;
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l.has_value());
    unique_fd waiting = test::connect_client(l->local_endpoint());  // queued for the newcomer
    auto p1 = test::make_tcp_pair();
    auto p2 = test::make_tcp_pair();

    struct shared_state {
        connection* a = nullptr;
        connection* b = nullptr;
        int data_calls = 0;
        int newcomer_data = 0;
        int closed = 0;
        int closed_fd = -1;
        int new_fd = -1;
        connection_ptr newcomer;
    };
    auto st = std::make_shared<shared_state>();
    auto newcomer_cbs = std::make_shared<connection_callbacks>();
    newcomer_cbs->on_data = [st](connection&, std::span<const std::byte>) { st->newcomer_data++; };
    auto cbs = std::make_shared<connection_callbacks>();
    const int lfd = l->native_handle();
    cbs->on_data = [st, lfd, newcomer_cbs, &lt](connection& c, std::span<const std::byte>) {
        st->data_calls++;
        if (st->newcomer) return;
        connection* other = &c == st->a ? st->b : st->a;
        st->closed_fd = other->native_handle();
        other->close();
        // Occupy any lower free numbers, so that the next descriptor takes the closed one's.
        std::vector<unique_fd> fillers;
        for (;;) {
            unique_fd f(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (!f || f.get() >= st->closed_fd) break;
            fillers.push_back(std::move(f));
        }
        unique_fd fd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
        st->new_fd = fd.get();
        auto n = connection::adopt(lt.lp, std::move(fd), newcomer_cbs);
        ASSERT_TRUE(n.has_value());
        st->newcomer = *n;
    };
    cbs->on_closed = [st](connection&, const close_report&) { st->closed++; };
    lt.sync([&] {
        st->a = connection::adopt(lt.lp, std::move(p1.server), cbs).value().get();
        st->b = connection::adopt(lt.lp, std::move(p2.server), cbs).value().get();
    });
    // Hold the loop while both clients send, so that one wait reports both.
    std::promise<void> holding;
    lt.lp.post([&holding] {
        holding.set_value();
        std::this_thread::sleep_for(100ms);
    });
    holding.get_future().wait();
    ASSERT_TRUE(test::send_all(p1.client.get(), "one", 3));
    ASSERT_TRUE(test::send_all(p2.client.get(), "two", 3));
    ASSERT_TRUE(test::wait_for([&] { return lt.sync([&] { return st->closed == 1; }); }));
    std::this_thread::sleep_for(20ms);
    lt.sync([&] {
        EXPECT_EQ(st->data_calls, 1) << "the closed connection's stale event was delivered";
        EXPECT_EQ(st->newcomer_data, 0) << "a stale event reached the descriptor's new owner";
        // On io_uring the closed connection keeps its number until its recv's cancellation
        // completes, so the newcomer cannot get it (which is the safety this test is about).
        if (lt.lp.backend() == loop_backend::epoll) {
            EXPECT_EQ(st->new_fd, st->closed_fd) << "(the number was not reused: less was tested)";
        } else {
            EXPECT_NE(st->new_fd, st->closed_fd);
        }
        // End the others so nothing leaks.
        (st->a->is_open() ? st->a : st->b)->close();
        st->newcomer->close();
    });
    ASSERT_TRUE(test::wait_for([&] { return lt.sync([&] { return st->closed == 2; }); }));
    lt.sync([&] { st->newcomer.reset(); });
}

// on_backpressure runs inside write(); if it ends the connection, write() must not arm a timer
// for it afterwards (it would fire on a destroyed connection).
TEST(connection_lifetime, ending_inside_on_backpressure_leaves_no_timer_behind) {
    test::loop_thread lt;
    auto p = test::make_tcp_pair();
    connection_options opts;
    opts.high_water = 1024;
    opts.low_water = 512;
    opts.write_timeout = 50ms;
    opts.idle_timeout = 50ms;
    std::atomic<int> closed{0};
    auto cbs = std::make_shared<connection_callbacks>();
    cbs->on_open = [](connection& c) {
        const std::string big(8U << 20, 'b');  // more than the socket takes at once
        (void)c.write(big);
    };
    cbs->on_backpressure = [](connection& c, bool above) {
        if (above) c.close();
    };
    cbs->on_closed = [&closed](connection&, const close_report&) { closed++; };
    const std::size_t timers = lt.sync([&] {
        (void)connection::adopt(lt.lp, std::move(p.server), cbs, opts).value();  // not kept
        return lt.lp.timer_count();
    });
    EXPECT_EQ(timers, 0U) << "a timer is armed for a closed connection";
    ASSERT_TRUE(test::wait_for([&] { return closed.load() == 1; }));
    std::this_thread::sleep_for(150ms);  // a stray timer would fire now, on freed memory
    EXPECT_EQ(closed.load(), 1);
}

TEST_F(served, read_timeout_restarts_when_reading_resumes) {
    connection_options opts;
    opts.read_timeout = 100ms;
    serve({}, opts);
    lt_.sync([&] { conn_->pause_reading(); });
    std::this_thread::sleep_for(250ms);
    EXPECT_EQ(closed_count_.load(), 0) << "the read timeout must not count while paused";
    lt_.sync([&] { conn_->resume_reading(); });
    ASSERT_TRUE(wait_closed(3s)) << "the read timeout never came back after resume_reading()";
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::read);
}

// After our FIN, the peer's data and FIN make epoll report EPOLLHUP, whatever we watch. With
// reading paused that is neither a reset nor a reason to spin: the data waits for resume.
TEST_F(served, peer_fin_while_reading_is_paused_keeps_the_data_and_does_not_spin) {
    auto got = std::make_shared<std::string>();
    connection_callbacks cb;
    cb.on_data = [got](connection&, std::span<const std::byte> d) {
        got->append(reinterpret_cast<const char*>(d.data()), d.size());
    };
    serve(std::move(cb));
    const int fd = pair_.client.get();
    lt_.sync([&] {
        conn_->shutdown_write();
        conn_->pause_reading();
    });
    EXPECT_EQ(test::read_to_eof(fd), 0);
    ASSERT_TRUE(test::send_all(fd, "late data", 9));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::this_thread::sleep_for(50ms);
    const auto cpu0 = lt_.sync([] { return thread_cpu(); });
    std::this_thread::sleep_for(200ms);
    const auto cpu1 = lt_.sync([] { return thread_cpu(); });
    EXPECT_EQ(closed_count_.load(), 0) << report().to_string();
    EXPECT_LT(cpu1 - cpu0, 50ms) << "the loop spins on EPOLLHUP";
    lt_.sync([&] { conn_->resume_reading(); });
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean) << report().to_string();
    EXPECT_EQ(lt_.sync([&] { return *got; }), "late data");
}

TEST_F(served, pausing_inside_on_data_after_both_fins_loses_nothing) {
    auto got = std::make_shared<std::string>();
    connection_callbacks cb;
    cb.on_data = [got](connection& c, std::span<const std::byte> d) {
        got->append(reinterpret_cast<const char*>(d.data()), d.size());
        c.pause_reading();
    };
    serve(std::move(cb));
    const int fd = pair_.client.get();
    lt_.sync([&] { conn_->shutdown_write(); });
    EXPECT_EQ(test::read_to_eof(fd), 0);
    ASSERT_TRUE(test::send_all(fd, "request", 7));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(closed_count_.load(), 0) << report().to_string();
    lt_.sync([&] { conn_->resume_reading(); });
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean) << report().to_string();
    EXPECT_EQ(lt_.sync([&] { return *got; }), "request");
}

TEST_F(served, hup_with_unread_data_still_delivers_it) {
    auto got = std::make_shared<std::string>();
    connection_callbacks cb;
    cb.on_data = [got](connection&, std::span<const std::byte> d) {
        got->append(reinterpret_cast<const char*>(d.data()), d.size());
    };
    serve(std::move(cb));
    const int fd = pair_.client.get();
    // Hold the loop so the data, the FIN and our own FIN are all in before it looks.
    lt_.sync([&] { conn_->shutdown_write(); });
    EXPECT_EQ(test::read_to_eof(fd), 0);
    std::promise<void> holding;
    lt_.lp.post([&holding] {
        holding.set_value();
        std::this_thread::sleep_for(100ms);
    });
    holding.get_future().wait();
    const std::string body(200000, 'h');  // several reads' worth
    ASSERT_TRUE(test::send_all(fd, body.data(), body.size()));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean) << report().to_string();
    EXPECT_EQ(lt_.sync([&] { return got->size(); }), body.size());
}

TEST_F(served, a_reset_while_reading_is_paused_is_picked_up_from_so_error) {
    serve({});
    lt_.sync([&] { conn_->pause_reading(); });
    linger lg{1, 0};
    ::setsockopt(pair_.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    pair_.client.reset();
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::peer_reset) << report().to_string();
    EXPECT_EQ(report().error, std::error_code(ECONNRESET, std::system_category()));
}

TEST_F(served, close_gracefully_a_second_time_can_only_tighten_the_deadline) {
    serve({});
    lt_.sync([&] {
        conn_->close_gracefully(30s, 1U << 20);
        conn_->close_gracefully(100ms, 1U << 20);  // e.g. a server stop with a shorter deadline
    });
    ASSERT_TRUE(wait_closed(3s)) << "the second, shorter deadline was ignored";
    EXPECT_EQ(report().outcome, close_outcome::timed_out);
    EXPECT_EQ(conn_->timeout_fired(), timeout_kind::close);
}

TEST_F(served, a_reset_in_the_middle_of_a_graceful_close_is_reported_as_such) {
    serve({});
    lt_.sync([&] { conn_->close_gracefully(5s, 1U << 20); });
    EXPECT_EQ(test::read_to_eof(pair_.client.get()), 0);
    ASSERT_TRUE(test::send_all(pair_.client.get(), "partial", 7));
    linger lg{1, 0};
    ::setsockopt(pair_.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    pair_.client.reset();
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::peer_reset) << report().to_string();
    EXPECT_EQ(report().method, close_method::graceful) << "the close that was asked for";
}

// close_gracefully() from on_data with a large reply still buffered, and the peer's FIN read
// before the reply is out: every byte goes out, then FIN, and the end is clean.
TEST_F(served, close_gracefully_from_on_data_with_output_buffered_after_peer_eof) {
    constexpr std::size_t reply = 4U << 20;
    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte>) {
        if (c.bytes_sent() > 0 || c.buffered_bytes() > 0) return;
        std::string body(reply, '\0');
        for (std::size_t i = 0; i < reply; ++i)
            body[i] = test::pattern_byte(i);
        EXPECT_TRUE(c.write(body).has_value());
        c.close_gracefully(5s, 1U << 20);
        c.close_gracefully(5s, 1U << 20);  // twice: no effect
        EXPECT_FALSE(c.write(std::string_view("more")).has_value());
    };
    connection_options opts;
    opts.high_water = 16U << 20;
    serve(std::move(cb), opts);
    const int fd = pair_.client.get();
    ASSERT_TRUE(test::send_all(fd, "get", 3));
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    std::this_thread::sleep_for(50ms);  // our FIN-less reply is stuck; the peer's FIN is read
    std::string got;
    EXPECT_EQ(test::read_to_eof(fd, &got), static_cast<long long>(reply));
    bool intact = got.size() == reply;
    for (std::size_t i = 0; intact && i < got.size(); ++i)
        intact = got[i] == test::pattern_byte(i);
    EXPECT_TRUE(intact);
    ASSERT_TRUE(wait_closed());
    EXPECT_EQ(report().outcome, close_outcome::clean) << report().to_string();
    EXPECT_EQ(report().bytes_sent, reply);
}

// SO_LINGER with a positive time, set by the application on the descriptor, makes Linux's close()
// wait for unsent data even on a non-blocking socket: that must not stall the loop thread.
TEST_F(served, close_does_not_block_the_loop_when_the_application_set_so_linger) {
    connection_options opts;
    opts.high_water = 64U << 20;
    serve({}, opts);
    const int small = 4096;
    ::setsockopt(pair_.client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const auto took = lt_.sync([&] {
        const std::string chunk(1U << 20, 'l');
        for (int i = 0; i < 8; ++i)
            (void)conn_->write(chunk);  // the client never reads: most of it stays queued
        linger lg{1, 3};
        ::setsockopt(conn_->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        const auto t0 = clock::now();
        conn_->close();
        return clock::now() - t0;
    });
    EXPECT_LT(took, 1s) << "close() blocked the loop thread";
    ASSERT_TRUE(wait_closed());
}

}  // namespace
}  // namespace orderly

namespace orderly {
namespace {

// On io_uring a paused connection keeps its multishot recv armed and stashes what arrives; that
// read-ahead must stay bounded (the recv is cancelled at a read buffer's worth) and resume must
// deliver every byte in order. On epoll nothing is read while paused.
TEST_F(served, a_paused_reader_reads_ahead_a_bounded_amount_and_resumes_in_order) {
    auto got = std::make_shared<std::string>();
    connection_callbacks cb;
    cb.on_data = [got](connection&, std::span<const std::byte> d) {
        got->append(reinterpret_cast<const char*>(d.data()), d.size());
    };
    pair_ = test::make_tcp_pair();
    const int small = 16384;
    ASSERT_EQ(::setsockopt(pair_.server.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    ASSERT_EQ(::setsockopt(pair_.client.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    serve_pair(std::move(cb));
    lt_.sync([&] { conn_->pause_reading(); });
    const int fd = pair_.client.get();
    ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    std::string sent;
    char block[4096];
    // Send until the kernel refuses twice in a row with a pause between: the reader is stuck.
    for (int refused = 0; refused < 2 && sent.size() < (16U << 20);) {
        for (std::size_t i = 0; i < sizeof block; ++i)
            block[i] = static_cast<char>('a' + (sent.size() + i) % 26);
        const ssize_t n = ::send(fd, block, sizeof block, MSG_NOSIGNAL);
        if (n > 0) {
            sent.append(block, static_cast<std::size_t>(n));
            refused = 0;
        } else {
            ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
            ++refused;
            std::this_thread::sleep_for(100ms);
        }
    }
    // Kernel buffers of about 2 x 32 KiB, plus a 64 KiB read-ahead and one provided buffer.
    EXPECT_LT(sent.size(), 1U << 20) << "a paused connection kept reading";
    EXPECT_EQ(lt_.sync([&] { return got->size(); }), 0U) << "data delivered while paused";
    lt_.sync([&] { conn_->resume_reading(); });
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    for (int i = 0; i < 200 && lt_.sync([&] { return got->size(); }) < sent.size(); ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(lt_.sync([&] { return *got; }), sent);
}

}  // namespace
}  // namespace orderly
