// Hostile peers against the event layer (connection, server): a peer that never reads, one that
// floods while we drain, a slowloris, one that half-closes and then vanishes, one that connects
// and says nothing. Each case checks the close report and which timer fired, that the connection
// ends within its deadline (+10 %, measured from the moment the deadline started to count), and
// that nothing hangs or leaks.
//
// What the library promises about timeouts (connection.hpp): idle = nothing read or written for
// idle_timeout; read = no byte arrived for read_timeout; write = no byte accepted by the kernel for
// write_timeout. Every one of them is pushed back by a single byte, so a slowloris that trickles
// one byte at a time is never ended by them; the tests below pin that down and show the remedies:
// lifetime_timeout (a hard cap counted from adopt), or a request deadline the application sets
// with loop::run_after.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "orderly/event/connection.hpp"
#include "orderly/event/server.hpp"
#include "unit/event/event_test_util.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// `early` allows for a reference time that was sampled (and so may be a little late).
void expect_within(clock::duration took, clock::duration want,
                   clock::duration early = clock::duration::zero()) {
    EXPECT_GE(took, want - early) << "ended early";
    EXPECT_LE(took, want + want / 10)
        << "took " << std::chrono::duration<double, std::milli>(took).count()
        << " ms for a deadline of " << std::chrono::duration<double, std::milli>(want).count()
        << " ms";
}

// The peer got a RST: a read reports ECONNRESET (after any bytes still queued for it).
bool peer_sees_reset(int fd) {
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && errno == ECONNRESET;
    }
}

// A slowloris on its own thread: one byte every 100 ms until stopped or a send fails.
class trickler {
  public:
    explicit trickler(int fd)
        : thread_([this, fd] {
              while (!stop_.load()) {
                  if (::send(fd, "s", 1, MSG_NOSIGNAL) != 1) {
                      errno_ = errno;
                      return;
                  }
                  std::this_thread::sleep_for(100ms);
              }
          }) {}
    trickler(const trickler&) = delete;
    trickler& operator=(const trickler&) = delete;
    ~trickler() { stop(); }
    // Stops and joins; the errno of the send that failed, 0 if none did.
    int stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return errno_.load();
    }

  private:
    std::atomic<bool> stop_{false};
    std::atomic<int> errno_{0};
    std::thread thread_;
};

// One connection served on its own loop thread; the end is recorded with its time.
class hostile_event : public testing::Test {
  protected:
    void serve(connection_callbacks cbs, connection_options opts = {}) {
        pair_ = test::make_tcp_pair();
        ASSERT_TRUE(pair_.client.valid() && pair_.server.valid());
        cbs.on_closed = [this](connection& c, const close_report& r) {
            std::lock_guard lock(mu_);
            report_ = r;
            kind_ = c.timeout_fired();
            closed_at_ = clock::now();
            closed_ = true;
        };
        auto shared = std::make_shared<const connection_callbacks>(std::move(cbs));
        opened_at_ = clock::now();
        conn_ = lt_.sync([&] {
            auto c = connection::adopt(lt_.lp, std::move(pair_.server), shared, opts);
            EXPECT_TRUE(c.has_value());
            return c ? *c : connection_ptr{};
        });
        ASSERT_TRUE(conn_);
    }
    bool wait_closed(std::chrono::milliseconds t = 5s) {
        return test::wait_for([&] { return closed_.load(); }, t);
    }
    close_report report() {
        std::lock_guard lock(mu_);
        return report_;
    }
    timeout_kind kind() {
        std::lock_guard lock(mu_);
        return kind_;
    }
    clock::time_point closed_at() {
        std::lock_guard lock(mu_);
        return closed_at_;
    }
    // Writes 8 MiB at once from a callback: more than the socket buffers of a peer that does not
    // read (about 4 MiB on loopback), so the rest is buffered by the connection.
    void write_a_lot(connection& c) {
        write_started_ = clock::now();
        const std::string chunk(1U << 20, 'w');
        for (int i = 0; i < 8; ++i)
            if (!c.write(chunk)) break;
        // On io_uring the kernel takes the first bytes only once this callback has returned
        // (the sends are submitted with the loop's next wait), so the write timer starts then.
        if (c.backend() == loop_backend::io_uring) write_started_ = clock::now();
        written_ = true;
    }
    // When the write timer started to count: the start of the writing callback (the connection
    // stamps activity with the loop's time of the batch, taken before the callback ran), or the
    // last time the kernel took more bytes after it, watched until the connection ends. A peer
    // that does not read still has its receive queue compacted by the kernel now and then, which
    // opens its window a little, so that moment can come well after the buffers first filled.
    clock::time_point last_write_progress() {
        if (!test::wait_for([&] { return written_.load(); }, 5s)) return clock::now();
        std::uint64_t sent = lt_.sync([&] { return conn_->bytes_sent(); });
        clock::time_point at = write_started_;
        while (!closed_.load()) {
            const auto now = clock::now();
            const auto n = lt_.sync([&] { return conn_->bytes_sent(); });
            if (n != sent) {
                sent = n;
                at = now;
            }
            std::this_thread::sleep_for(1ms);
        }
        return at;
    }
    void TearDown() override {
        if (conn_) {
            lt_.sync([&] {
                if (conn_->is_open()) conn_->abort();
            });
            EXPECT_TRUE(wait_closed());
            lt_.sync([] {});  // the deferred on_closed has run
            conn_.reset();
        }
    }

    test::loop_thread lt_;
    test::tcp_pair pair_;
    connection_ptr conn_;
    std::mutex mu_;
    close_report report_;
    timeout_kind kind_ = timeout_kind::none;
    clock::time_point opened_at_;
    clock::time_point closed_at_;
    clock::time_point write_started_;
    std::atomic<bool> written_{false};
    std::atomic<bool> closed_{false};
};

// 1. The peer never reads. The kernel stops taking our bytes within milliseconds; the write timer
// counts from then and aborts. The report says timed_out, the write timer fired, the kernel still
// held bytes for the peer, and most of what we wrote never reached the kernel (dropped).
TEST_F(hostile_event, peer_that_never_reads_trips_the_write_timeout) {
    connection_options opts;
    opts.write_timeout = 800ms;
    opts.high_water = 64U << 20;
    connection_callbacks cb;
    cb.on_open = [this](connection& c) { write_a_lot(c); };
    serve(std::move(cb), opts);
    const auto progress = last_write_progress();
    ASSERT_TRUE(wait_closed());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::write);
    EXPECT_EQ(r.method, close_method::abort);
    EXPECT_GT(r.unacked_bytes, 0U);
    EXPECT_LT(r.bytes_sent, 8U << 20) << "the rest was buffered by us and dropped by the abort";
    expect_within(closed_at() - progress, 800ms, 5ms);
    EXPECT_TRUE(peer_sees_reset(pair_.client.get()));
}

// 2. The peer floods while we close gracefully: the drain cap ends it long before the deadline,
// with an abort the flooder sees as a reset.
TEST_F(hostile_event, flooding_peer_hits_the_drain_limit_and_gets_rst) {
    serve({});
    const int fd = pair_.client.get();
    std::atomic<bool> stop{false};
    std::atomic<int> flood_errno{0};
    std::thread flood([&] {
        const std::string chunk(16384, 'f');
        timeval tv{0, 100000};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (!stop.load()) {
            const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                flood_errno = errno;
                break;
            }
        }
    });
    std::this_thread::sleep_for(20ms);
    constexpr std::uint64_t limit = 256U << 10;
    const auto t0 = clock::now();
    lt_.sync([&] { conn_->close_gracefully(5s, limit); });
    ASSERT_TRUE(wait_closed());
    const auto took = closed_at() - t0;
    (void)test::wait_for([&] { return flood_errno.load() != 0; }, 500ms);
    stop = true;
    flood.join();
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::drain_limit) << r.to_string();
    EXPECT_EQ(r.method, close_method::graceful);
    EXPECT_GE(r.bytes_drained, limit);
    EXPECT_TRUE(r.fin_sent);
    EXPECT_LT(took, 1s) << "the cap, not the 5 s deadline, must end a flood";
    EXPECT_TRUE(flood_errno.load() == ECONNRESET || flood_errno.load() == EPIPE)
        << "the flooder must see the RST, got errno " << flood_errno.load();
}

// 3a. A slowloris (one byte every 100 ms) against the idle and read timeouts (500 ms each): both
// are pushed back by every byte, as promised, so the trickle holds the connection for as long as
// it lasts. Once it stops, the read timeout fires 500 ms after the last byte.
TEST_F(hostile_event, slowloris_holds_the_connection_while_it_trickles) {
    connection_options opts;
    opts.idle_timeout = 500ms;
    opts.read_timeout = 500ms;
    serve({}, opts);
    const int fd = pair_.client.get();
    clock::time_point last_byte;
    for (int i = 0; i < 12; ++i) {  // 1.2 s: more than twice either timeout
        ASSERT_TRUE(test::send_all(fd, "s", 1));
        last_byte = clock::now();
        std::this_thread::sleep_for(100ms);
        ASSERT_FALSE(closed_.load()) << "ended after " << i + 1 << " bytes despite the trickle";
    }
    ASSERT_TRUE(wait_closed());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::read) << "the read timer comes first when both are equal";
    EXPECT_EQ(r.bytes_received, 12U);
    expect_within(closed_at() - last_byte, 500ms);
    EXPECT_TRUE(peer_sees_reset(fd));
}

// 3b. The remedy: a deadline for the whole request, set by the application on the loop. At 800 ms
// the application gives up on the request and closes gracefully with 200 ms to spare; the
// slowloris never sends EOF, so the close timer aborts it at 1 s although bytes keep arriving.
TEST_F(hostile_event, slowloris_is_ended_by_an_application_request_deadline) {
    connection_options opts;
    opts.read_timeout = 300ms;
    connection_callbacks cb;
    cb.on_open = [](connection& c) {
        auto self = c.shared_from_this();
        c.get_loop().run_after(800ms, [self] {
            if (self->is_open()) self->close_gracefully(200ms);
        });
    };
    serve(std::move(cb), opts);
    trickler trickle(pair_.client.get());
    ASSERT_TRUE(wait_closed());
    trickle.stop();
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::close);
    EXPECT_EQ(r.method, close_method::graceful);
    EXPECT_GE(r.bytes_received, 6U);
    EXPECT_GE(r.bytes_drained, 1U) << "the trickle went on while we drained";
    expect_within(closed_at() - opened_at_, 1s);
}

// 3c. The setting for it: lifetime_timeout is counted from adopt() and pushed back by nothing.
// The same trickle against a 500 ms idle timeout and a 1 s lifetime ends at 1 s, by abort.
TEST_F(hostile_event, slowloris_is_ended_by_the_lifetime_timeout) {
    connection_options opts;
    opts.idle_timeout = 500ms;
    opts.lifetime_timeout = 1s;
    serve({}, opts);
    const int fd = pair_.client.get();
    trickler trickle(fd);
    ASSERT_TRUE(wait_closed());
    const int seen = trickle.stop();
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::lifetime);
    EXPECT_EQ(r.method, close_method::abort);
    EXPECT_GE(r.bytes_received, 8U) << "the trickle went on until the end";
    expect_within(closed_at() - opened_at_, 1s);
    // The RST reaches whichever call comes first: the trickle's next send, or our read.
    EXPECT_TRUE(seen == ECONNRESET || seen == EPIPE || (seen == 0 && peer_sees_reset(fd)))
        << "the peer must see the abort, got errno " << seen;
}

// 3d. A slowloris slower than the idle timeout (one byte a second against 500 ms) is ended by the
// idle timeout, 500 ms after its byte.
TEST_F(hostile_event, slowloris_slower_than_the_idle_timeout_is_ended_by_it) {
    connection_options opts;
    opts.idle_timeout = 500ms;
    serve({}, opts);
    const int fd = pair_.client.get();
    ASSERT_TRUE(test::send_all(fd, "s", 1));
    const auto sent_at = clock::now();
    ASSERT_TRUE(wait_closed(3s)) << "the next byte would only come after 1 s";
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::idle);
    EXPECT_EQ(r.bytes_received, 1U);
    // The timer counts from the loop's time of the batch that read the byte; the loop thread may
    // take that time a moment before this thread takes sent_at: allow 50 ms early.
    expect_within(closed_at() - sent_at, 500ms, 50ms);
    EXPECT_TRUE(peer_sees_reset(fd));
}

// 4a. The peer half-closes, then never reads and never closes; we keep writing. The output piles
// up, the kernel takes nothing more, and the write timeout aborts.
TEST_F(hostile_event, peer_that_half_closes_then_vanishes_trips_the_write_timeout) {
    connection_options opts;
    opts.write_timeout = 800ms;
    opts.high_water = 64U << 20;
    std::atomic<bool> eof{false};
    clock::time_point eof_at;
    connection_callbacks cb;
    cb.on_peer_eof = [&](connection& c) {
        eof_at = clock::now();
        eof = true;
        write_a_lot(c);
    };
    serve(std::move(cb), opts);
    ASSERT_EQ(::shutdown(pair_.client.get(), SHUT_WR), 0);
    const auto progress = last_write_progress();
    ASSERT_TRUE(wait_closed());
    ASSERT_TRUE(eof.load());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::write);
    EXPECT_TRUE(r.peer_eof);
    EXPECT_FALSE(r.fin_sent);
    EXPECT_GT(r.unacked_bytes, 0U);
    EXPECT_GE(progress, eof_at);
    expect_within(closed_at() - progress, 800ms, 5ms);
}

// 4b. The same peer, ended with close_gracefully: our FIN waits behind output the peer never
// takes, so the close deadline aborts it.
TEST_F(hostile_event, peer_that_half_closes_then_vanishes_trips_the_close_deadline) {
    std::atomic<bool> eof{false};
    clock::time_point eof_at;
    connection_options opts;
    opts.high_water = 64U << 20;
    connection_callbacks cb;
    cb.on_peer_eof = [&](connection& c) {
        write_a_lot(c);
        eof_at = clock::now();  // the close deadline counts from here
        eof = true;
        c.close_gracefully(600ms);
    };
    serve(std::move(cb), opts);
    ASSERT_EQ(::shutdown(pair_.client.get(), SHUT_WR), 0);
    ASSERT_TRUE(wait_closed());
    ASSERT_TRUE(eof.load());
    const auto r = report();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(kind(), timeout_kind::close);
    EXPECT_EQ(r.method, close_method::graceful);
    EXPECT_FALSE(r.fin_sent) << "the FIN never left: output was still queued";
    EXPECT_GT(r.unacked_bytes, 0U);
    expect_within(closed_at() - eof_at, 600ms);
}

// 4c. The same peer, but everything we wrote fits in the kernel's buffers, so the connection has
// nothing buffered when we close gracefully: the FIN is queued behind bytes the peer never takes,
// and the peer's EOF was read long ago. The report must not call that the orderly end: the
// connection waits for the acknowledgements until the close deadline, then aborts.
TEST_F(hostile_event, close_gracefully_with_unacked_output_after_peer_eof_is_not_clean) {
    connection_callbacks cb;
    cb.on_peer_eof = [](connection& c) {
        // The kernel takes it all: at once on epoll, with the send's completion on io_uring.
        (void)c.write(std::string(2U << 20, 'u'));
        if (c.buffered_bytes() == 0) c.close_gracefully(400ms);
    };
    cb.on_drained = [](connection& c) { c.close_gracefully(400ms); };
    serve(std::move(cb));
    ASSERT_EQ(::shutdown(pair_.client.get(), SHUT_WR), 0);
    ASSERT_TRUE(wait_closed());
    const auto r = report();
    EXPECT_GT(r.unacked_bytes, 0U) << r.to_string();
    EXPECT_EQ(r.outcome, close_outcome::timed_out) << r.to_string();
    EXPECT_EQ(r.close_duration >= 400ms, true) << r.to_string();
}

// 5. A client that connects and sends nothing, against a server with a read timeout, then one with
// an idle timeout: the timer ends it on time and the client sees a reset.
void silent_client_against(timeout_kind which) {
    server_options opts;
    opts.threads = 1;
    (which == timeout_kind::read ? opts.connection.read_timeout : opts.connection.idle_timeout) =
        800ms;
    std::mutex mu;
    std::vector<close_report> reports;
    std::vector<timeout_kind> kinds;
    connection_callbacks cb;
    cb.on_closed = [&](connection& c, const close_report& r) {
        std::lock_guard lock(mu);
        reports.push_back(r);
        kinds.push_back(c.timeout_fired());
    };
    auto srv = server::start(endpoint::ipv4_loopback(0), cb, opts);
    ASSERT_TRUE(srv.has_value()) << srv.error().message();
    const auto t0 = clock::now();
    unique_fd c = test::connect_client((*srv)->local_endpoint(), 5000);
    ASSERT_TRUE(c.valid());
    char b;
    ssize_t got = 0;
    // EINTR: io_uring's task-work notification can interrupt a blocking recv with a timeout.
    while ((got = ::recv(c.get(), &b, 1, 0)) < 0 && errno == EINTR) {
    }
    EXPECT_EQ(got, -1);
    EXPECT_EQ(errno, ECONNRESET);
    const auto took = clock::now() - t0;
    ASSERT_TRUE(test::wait_for([&] {
        std::lock_guard lock(mu);
        return !reports.empty();
    }));
    {
        std::lock_guard lock(mu);
        EXPECT_EQ(reports[0].outcome, close_outcome::timed_out) << reports[0].to_string();
        EXPECT_EQ(kinds[0], which);
        EXPECT_EQ(reports[0].bytes_received, 0U);
        expect_within(reports[0].lifetime, 800ms);
    }
    EXPECT_GE(took, 800ms);
    EXPECT_LE(took, 880ms + 20ms) << "the client's own view, plus the round trip";
    const auto s = (*srv)->stop_gracefully(deadline::after(1s));
    EXPECT_EQ(s.connections, 0U);
}

TEST(hostile_server, silent_client_is_ended_by_the_read_timeout) {
    silent_client_against(timeout_kind::read);
}

TEST(hostile_server, silent_client_is_ended_by_the_idle_timeout) {
    silent_client_against(timeout_kind::idle);
}

}  // namespace
}  // namespace orderly
