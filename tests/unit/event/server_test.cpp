#include "orderly/event/server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "event_test_util.hpp"
#include "support/loopback.hpp"

using namespace std::chrono_literals;

namespace orderly {
namespace {

connection_callbacks echo_callbacks() {
    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    cb.on_peer_eof = [](connection& c) { c.shutdown_write(); };
    return cb;
}

std::unique_ptr<server> start_echo(server_options opts = {},
                                   connection_callbacks cb = echo_callbacks()) {
    auto s = server::start(endpoint::ipv4_loopback(0), std::move(cb), std::move(opts));
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    return s ? std::move(*s) : nullptr;
}

TEST(server, echoes_1000_concurrent_connections) {
    ASSERT_GE(test::raise_fd_limit(4096), 2200U) << "need ~2100 descriptors";
    server_options opts;
    opts.threads = 2;
    std::atomic<int> closed{0};
    std::atomic<int> clean{0};
    auto cb = echo_callbacks();
    cb.on_closed = [&](connection&, const close_report& r) {
        closed++;
        if (r.outcome == close_outcome::clean) clean++;
    };
    auto srv = start_echo(opts, cb);
    ASSERT_TRUE(srv);
    EXPECT_EQ(srv->thread_count(), 2U);
    constexpr int n = 1000;
    const auto start = clock::now();
    std::vector<unique_fd> clients;
    clients.reserve(n);
    for (int i = 0; i < n; ++i) {
        clients.push_back(test::connect_client(srv->local_endpoint()));
        ASSERT_TRUE(clients.back().valid());
        const std::string msg = "client " + std::to_string(i) + ";";
        ASSERT_TRUE(test::send_all(clients.back().get(), msg.data(), msg.size()));
    }
    EXPECT_TRUE(test::wait_for([&] { return srv->counts()[0] == n; }, 10s));
    for (int i = 0; i < n; ++i) {
        const std::string msg = "client " + std::to_string(i) + ";";
        ASSERT_EQ(::shutdown(clients[static_cast<std::size_t>(i)].get(), SHUT_WR), 0);
        std::string got;
        ASSERT_EQ(test::read_to_eof(clients[static_cast<std::size_t>(i)].get(), &got),
                  static_cast<long long>(msg.size()));
        ASSERT_EQ(got, msg);
        clients[static_cast<std::size_t>(i)].reset();
    }
    EXPECT_TRUE(test::wait_for([&] { return closed.load() == n; }, 10s));
    EXPECT_EQ(clean.load(), n);
    EXPECT_LT(clock::now() - start, 20s);
    const auto summary = srv->stop_gracefully(deadline::after(2s));
    EXPECT_EQ(summary.connections, 0U);
    EXPECT_EQ(srv->accepted(), static_cast<std::uint64_t>(n));
}

// 500 clients stream a pattern through the echo server; mid-stream the server stops gracefully.
// Each client must get back an exact prefix of what it sent followed by EOF — never a RST — and
// the clients together must have received every byte the server reports as sent.
TEST(server, graceful_stop_mid_stream_loses_nothing_and_resets_no_one) {
    ASSERT_GE(test::raise_fd_limit(4096), 1200U);
    constexpr int n = 500;
    server_options opts;
    opts.threads = 2;
    opts.connection.high_water = 64U << 10;
    opts.connection.low_water = 16U << 10;
    auto srv = start_echo(opts);
    ASSERT_TRUE(srv);

    struct client {
        unique_fd fd;
        std::uint64_t sent = 0;
        std::uint64_t received = 0;
        bool eof = false;
        bool reset = false;
        bool corrupt = false;
    };
    std::vector<client> clients(n);
    unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    for (int i = 0; i < n; ++i) {
        auto& c = clients[static_cast<std::size_t>(i)];
        c.fd = test::connect_client(srv->local_endpoint());
        ASSERT_TRUE(c.fd.valid());
        ::fcntl(c.fd.get(), F_SETFL, O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, c.fd.get(), &ev), 0);
    }
    std::atomic<bool> stop_requested{false};
    stop_summary summary;
    clock::duration stop_took{};
    std::thread stopper([&] {
        std::this_thread::sleep_for(300ms);  // let every client get going
        stop_requested = true;
        const auto t0 = clock::now();
        summary = srv->stop_gracefully(deadline::after(10s));
        stop_took = clock::now() - t0;
    });

    char buf[16384];
    char out[4096];
    int finished = 0;
    const auto end = clock::now() + 20s;
    epoll_event events[64];
    while (finished < n && clock::now() < end) {
        const int k = ::epoll_wait(ep.get(), events, 64, 100);
        for (int e = 0; e < k; ++e) {
            auto& c = clients[events[e].data.u32];
            if (!c.fd) continue;
            if ((events[e].events & EPOLLOUT) != 0 && !c.eof) {
                for (std::size_t j = 0; j < sizeof out; ++j)
                    out[j] = test::pattern_byte(c.sent + j);
                const ssize_t w = ::send(c.fd.get(), out, sizeof out, MSG_NOSIGNAL);
                if (w > 0) c.sent += static_cast<std::uint64_t>(w);
                if (w < 0 && (errno == ECONNRESET || errno == EPIPE)) c.reset = true;
            }
            if ((events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
                for (;;) {
                    const ssize_t r = ::recv(c.fd.get(), buf, sizeof buf, 0);
                    if (r > 0) {
                        for (ssize_t j = 0; j < r; ++j) {
                            if (buf[j] !=
                                test::pattern_byte(c.received + static_cast<std::uint64_t>(j))) {
                                c.corrupt = true;
                            }
                        }
                        c.received += static_cast<std::uint64_t>(r);
                        continue;
                    }
                    if (r == 0) c.eof = true;
                    if (r < 0 && errno == ECONNRESET) c.reset = true;
                    break;
                }
                if (c.eof || c.reset) {
                    c.fd.reset();  // all read: a plain close sends FIN
                    ++finished;
                }
            }
        }
    }
    stopper.join();
    std::uint64_t received = 0;
    int resets = 0;
    int corrupt = 0;
    int eofs = 0;
    for (auto& c : clients) {
        received += c.received;
        resets += c.reset ? 1 : 0;
        corrupt += c.corrupt ? 1 : 0;
        eofs += c.eof ? 1 : 0;
        EXPECT_LE(c.received, c.sent);
    }
    EXPECT_EQ(finished, n);
    EXPECT_EQ(eofs, n);
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(corrupt, 0);
    EXPECT_EQ(summary.connections, static_cast<std::uint64_t>(n)) << summary.to_string();
    EXPECT_EQ(summary.count(close_outcome::clean), static_cast<std::uint64_t>(n))
        << summary.to_string();
    EXPECT_EQ(summary.bytes_sent, received) << "bytes lost between the server and the clients";
    EXPECT_GT(received, 0U);
    EXPECT_FALSE(summary.deadline_reached);
    EXPECT_LT(stop_took, 10s);
}

// Once a client has seen the FIN of a graceful stop, the listener is gone: a newcomer is refused
// at once (not accepted by the kernel and reset when the server exits). Two loops, so the
// listener closes only when both have stopped accepting.
TEST(server, graceful_stop_refuses_newcomers_once_it_has_begun) {
    server_options opts;
    opts.threads = 2;
    auto srv = start_echo(opts);
    ASSERT_TRUE(srv);
    const endpoint at = srv->local_endpoint();
    unique_fd c = test::connect_client(at);
    ASSERT_TRUE(test::wait_for([&] { return srv->counts()[0] == 1; }));
    stop_summary s;
    std::thread stopper([&] { s = srv->stop_gracefully(deadline::after(5s)); });
    char b;
    EXPECT_EQ(::recv(c.get(), &b, 1, 0), 0) << "the stop's FIN";
    unique_fd late(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(late.valid());
    EXPECT_NE(::connect(late.get(), at.data(), at.size()), 0);
    EXPECT_EQ(errno, ECONNREFUSED);
    c.reset();  // our EOF ends the drain
    stopper.join();
    EXPECT_EQ(s.count(close_outcome::clean), 1U) << s.to_string();
}

TEST(server, graceful_stop_aborts_what_remains_at_the_deadline) {
    auto srv = start_echo();
    ASSERT_TRUE(srv);
    // A client that never closes: the stop must not wait for it beyond the deadline.
    unique_fd c = test::connect_client(srv->local_endpoint());
    ASSERT_TRUE(test::wait_for([&] { return srv->counts()[0] == 1; }));
    const auto t0 = clock::now();
    const auto s = srv->stop_gracefully(deadline::after(200ms));
    EXPECT_LT(clock::now() - t0, 2s);
    EXPECT_EQ(s.count(close_outcome::timed_out), 1U) << s.to_string();
    EXPECT_TRUE(s.deadline_reached);
    char b;
    EXPECT_EQ(::recv(c.get(), &b, 1, 0), 0) << "our FIN came before the abort";
}

TEST(server, the_registry_and_close_wait_detector_see_a_forgotten_half_close) {
    std::mutex mu;
    std::vector<std::string> logs;
    server_options opts;
    opts.threads = 1;
    opts.connection.close_wait_after = 50ms;
    opts.log = [&](std::string_view line) {
        std::lock_guard lock(mu);
        logs.emplace_back(line);
    };
    connection_callbacks cb;  // an application that forgets to answer the peer's FIN
    cb.on_data = [](connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    auto srv = start_echo(opts, cb);
    ASSERT_TRUE(srv);
    unique_fd a = test::connect_client(srv->local_endpoint());
    unique_fd b = test::connect_client(srv->local_endpoint());
    ASSERT_TRUE(test::wait_for([&] { return srv->counts()[0] == 2; }));
    ::shutdown(b.get(), SHUT_WR);
    ASSERT_TRUE(test::wait_for(
        [&] {
            std::lock_guard lock(mu);
            return !logs.empty();
        },
        5s));
    {
        std::lock_guard lock(mu);
        EXPECT_NE(logs[0].find("CLOSE_WAIT"), std::string::npos) << logs[0];
    }
    const auto counts = srv->counts();
    EXPECT_EQ(counts[static_cast<std::size_t>(connection_state::open)], 1U);
    EXPECT_EQ(counts[static_cast<std::size_t>(connection_state::half_closed_by_peer)], 1U);
    const auto list = srv->connections();
    EXPECT_EQ(list.size(), 2U);
    ::shutdown(a.get(), SHUT_WR);
    const auto s = srv->stop_gracefully(deadline::after(5s));
    EXPECT_EQ(s.count(close_outcome::clean), 2U) << s.to_string();
}

// A server in a child process with a low RLIMIT_NOFILE, so the limit cannot hurt the test runner.
// It answers commands on a pipe: 'r' = CPU time (µs), accept pauses, log lines; 'q' = stop.
class child_server {
  public:
    child_server(rlim_t fd_limit, bool reserve_descriptor) {
        int to_child[2];
        int from_child[2];
        // Commands go over a socket so that sending to a child that died is an error (EPIPE with
        // MSG_NOSIGNAL) rather than a SIGPIPE that kills the test runner.
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_child) != 0 ||
            ::pipe2(from_child, O_CLOEXEC) != 0) {
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(to_child[1]);
            ::close(from_child[0]);
            run(fd_limit, reserve_descriptor, to_child[0], from_child[1]);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        cmd_.reset(to_child[1]);
        reply_.reset(from_child[0]);
        pollfd p{reply_.get(), POLLIN, 0};
        std::uint16_t port = 0;
        if (::poll(&p, 1, 10000) == 1 &&
            ::read(reply_.get(), &port, sizeof port) == static_cast<ssize_t>(sizeof port)) {
            at_ = endpoint::ipv4_loopback(port);
        }
    }
    ~child_server() { (void)finish(); }
    child_server(const child_server&) = delete;
    child_server& operator=(const child_server&) = delete;

    [[nodiscard]] const endpoint& at() const { return at_; }
    [[nodiscard]] bool ok() const { return pid_ > 0 && at_.port() != 0; }

    struct stats {
        long long cpu_us = 0;
        long long pauses = 0;
        long long log_lines = 0;
    };
    bool ask(stats& out) {
        const char c = 'r';
        if (::send(cmd_.get(), &c, 1, MSG_NOSIGNAL) != 1) return false;
        pollfd p{reply_.get(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return false;
        long long v[3];
        if (::read(reply_.get(), v, sizeof v) != static_cast<ssize_t>(sizeof v)) return false;
        out = {v[0], v[1], v[2]};
        return true;
    }
    // Stops the child; true when it exited with status 0.
    bool finish() {
        if (pid_ <= 0) return false;
        const char q = 'q';
        (void)::send(cmd_.get(), &q, 1, MSG_NOSIGNAL);
        int status = 0;
        const bool ok =
            ::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        pid_ = -1;
        return ok;
    }

  private:
    [[noreturn]] static void run(rlim_t fd_limit, bool reserve, int cmd, int reply) {
        rlimit rl{fd_limit, fd_limit};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(2);
        server_options opts;
        opts.threads = 1;
        opts.accept_backoff = 100ms;
        opts.reserve_descriptor = reserve;
        std::atomic<int> log_lines{0};
        opts.log = [&](std::string_view) { log_lines++; };
        auto s = server::start(endpoint::ipv4_loopback(0), echo_callbacks(), opts);
        if (!s) ::_exit(3);
        const std::uint16_t port = (*s)->local_endpoint().port();
        if (::write(reply, &port, sizeof port) != sizeof port) ::_exit(4);
        for (;;) {
            char c = 0;
            if (::read(cmd, &c, 1) != 1) ::_exit(5);
            if (c == 'q') break;
            rusage ru{};
            ::getrusage(RUSAGE_SELF, &ru);
            const long long v[3] = {ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec +
                                        ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec,
                                    static_cast<long long>((*s)->accept_pauses()),
                                    log_lines.load()};
            if (::write(reply, v, sizeof v) != sizeof v) ::_exit(6);
        }
        (void)(*s)->stop_gracefully(deadline::after(2s));
        s->reset();
        ::_exit(0);
    }

    pid_t pid_ = -1;
    unique_fd cmd_;
    unique_fd reply_;
    endpoint at_;
};

// Clients that have had their one-byte echo (or, with `eof_counts`, an immediate EOF).
struct probe_clients {
    std::vector<unique_fd> fds;
    std::vector<int> answer;  // 0 = nothing yet, 1 = echo, 2 = EOF without echo

    int poll_answers() {
        int count = 0;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (answer[i] == 0 && fds[i]) {
                char b;
                const ssize_t n = ::recv(fds[i].get(), &b, 1, MSG_DONTWAIT);
                if (n == 1)
                    answer[i] = 1;
                else if (n == 0)
                    answer[i] = 2;
            }
            count += answer[i] != 0 ? 1 : 0;
        }
        return count;
    }
    [[nodiscard]] int count(int kind) const {
        return static_cast<int>(std::count(answer.begin(), answer.end(), kind));
    }
};

bool connect_probes(probe_clients& pc, const endpoint& at, int n) {
    for (int i = 0; i < n; ++i) {
        pc.fds.push_back(test::connect_client(at, 100));
        if (!pc.fds.back().valid() || !test::send_all(pc.fds.back().get(), "p", 1)) return false;
        pc.answer.push_back(0);
    }
    return true;
}

// The default policy: with RLIMIT_NOFILE 64 and 200 clients the server serves what it can, sleeps
// while starved (waiting clients stay in the backlog) and serves every one of them in the end.
TEST(server, descriptor_exhaustion_pauses_accepting_cheaply_and_recovers) {
    child_server child(64, false);
    ASSERT_TRUE(child.ok());
    constexpr int n = 200;
    probe_clients pc;
    ASSERT_TRUE(connect_probes(pc, child.at(), n)) << "the backlog should hold every client";
    test::wait_for([&] { return pc.poll_answers() >= 40; }, 5s);
    std::this_thread::sleep_for(200ms);
    const int first = pc.poll_answers();
    EXPECT_GT(first, 20) << "the server should serve what its descriptors allow";
    EXPECT_LT(first, n) << "the limit did not bite";
    EXPECT_EQ(pc.count(2), 0) << "nobody is refused under the default policy";

    child_server::stats before;
    child_server::stats after;
    ASSERT_TRUE(child.ask(before));
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(child.ask(after));
    EXPECT_LT(after.cpu_us - before.cpu_us, 100000) << "a starved server must not spin";
    EXPECT_GE(after.pauses, 1) << "accepting was never paused";
    EXPECT_LE(after.log_lines, 2) << "log once per burst, not per refusal";

    // Recovery: each client we finish releases a descriptor, which lets a waiting one in.
    const auto t0 = clock::now();
    int total = first;
    while (total < n && clock::now() - t0 < 20s) {
        for (std::size_t i = 0; i < pc.fds.size(); ++i) {
            if (pc.answer[i] != 0 && pc.fds[i]) {
                ::shutdown(pc.fds[i].get(), SHUT_WR);
                (void)test::read_to_eof(pc.fds[i].get());
                pc.fds[i].reset();
            }
        }
        std::this_thread::sleep_for(20ms);
        total = pc.poll_answers();
    }
    EXPECT_EQ(total, n) << "every waiting client is served in the end";
    EXPECT_EQ(pc.count(1), n);
    pc.fds.clear();
    EXPECT_TRUE(child.finish());
}

// The opt-in reserve-descriptor policy: clients beyond the limit are refused at once (EOF)
// instead of waiting, and those within it are still served.
TEST(server, reserve_descriptor_policy_refuses_instead_of_waiting) {
    child_server child(40, true);
    ASSERT_TRUE(child.ok());
    constexpr int n = 80;
    probe_clients pc;
    ASSERT_TRUE(connect_probes(pc, child.at(), n));
    EXPECT_TRUE(test::wait_for([&] { return pc.poll_answers() == n; }, 5s))
        << "every client gets an answer: an echo or a refusal";
    EXPECT_GT(pc.count(1), 10);
    EXPECT_GT(pc.count(2), 10);
    child_server::stats st;
    ASSERT_TRUE(child.ask(st));
    EXPECT_EQ(st.pauses, 0) << "this policy does not pause";
    pc.fds.clear();
    EXPECT_TRUE(child.finish());
}

TEST(server, serves_unix_domain_sockets) {
    const std::string path = test::temp_socket_path();
    auto at = endpoint::unix_path(path);
    ASSERT_TRUE(at.has_value());
    std::mutex mu;
    std::vector<close_report> reports;
    auto cb = echo_callbacks();
    cb.on_closed = [&](connection&, const close_report& r) {
        std::lock_guard lock(mu);
        reports.push_back(r);
    };
    server_options opts;
    opts.threads = 1;
    auto s = server::start(*at, cb, opts);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    unique_fd c = test::connect_client(*at);
    ASSERT_TRUE(test::send_all(c.get(), "unix", 4));
    ::shutdown(c.get(), SHUT_WR);
    std::string got;
    EXPECT_EQ(test::read_to_eof(c.get(), &got), 4);
    EXPECT_EQ(got, "unix");
    const auto summary = (*s)->stop_gracefully(deadline::after(2s));
    EXPECT_EQ(summary.connections, summary.count(close_outcome::clean)) << summary.to_string();
    std::lock_guard lock(mu);
    ASSERT_EQ(reports.size(), 1U);
    EXPECT_EQ(reports[0].outcome, close_outcome::clean) << reports[0].to_string();
    EXPECT_FALSE(reports[0].tcp.has_value());
    ::unlink(path.c_str());
}

TEST(server, stop_summary_reads_well) {
    stop_summary s;
    s.connections = 3;
    s.outcomes[static_cast<std::size_t>(close_outcome::clean)] = 2;
    s.outcomes[static_cast<std::size_t>(close_outcome::timed_out)] = 1;
    s.bytes_sent = 2048;
    s.deadline_reached = true;
    auto text = s.to_string();
    EXPECT_NE(text.find("3 connections (clean 2, timed_out 1)"), std::string::npos) << text;
    EXPECT_NE(text.find("2.0 KiB"), std::string::npos) << text;
    text = stop_summary{}.to_string();
    EXPECT_NE(text.find(": 0 connections, sent 0 B"), std::string::npos) << text;
    stop_summary one;
    one.connections = 1;
    one.outcomes[static_cast<std::size_t>(close_outcome::clean)] = 1;
    text = one.to_string();
    EXPECT_NE(text.find(": 1 connection (clean 1)"), std::string::npos) << text;
}

// --- Review: stopping while the loops are busy. ---

// Clients connect and leave in a tight loop while the server stops. Every connection the server
// accepted must have ended (on_closed) by the time stop_gracefully() returns: none may be left
// open on a loop that has already stopped (the descriptor would leak and the client would hang).
TEST(server, stop_while_clients_keep_connecting_leaves_no_connection_behind) {
    for (int round = 0; round < 40; ++round) {
        std::atomic<std::uint64_t> closed{0};
        auto cb = echo_callbacks();
        cb.on_closed = [&closed](connection&, const close_report&) { closed++; };
        server_options opts;
        opts.threads = 2;
        std::mutex log_mu;
        std::string log;
        opts.log = [&](std::string_view line) {
            std::lock_guard lock(log_mu);
            log += line;
            log += '\n';
        };
        auto srv = start_echo(opts, cb);
        ASSERT_TRUE(srv);
        const endpoint at = srv->local_endpoint();
        std::atomic<bool> done{false};
        std::thread clients([&] {
            while (!done.load()) {
                unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                if (::connect(fd.get(), at.data(), at.size()) != 0) continue;  // refused: stopped
                linger lg{1, 0};  // leave at once, so the server's count keeps touching zero
                ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
        });
        std::this_thread::sleep_for(std::chrono::microseconds(500 + 250 * (round % 8)));
        (void)srv->stop_gracefully(deadline::after(2s));
        const auto accepted = srv->accepted();
        const auto ended = closed.load();
        done = true;
        clients.join();
        std::lock_guard lock(log_mu);
        ASSERT_EQ(ended, accepted) << "round " << round << ": a connection outlived the stop\n"
                                   << log;
    }
}

// stop_now() while another thread is inside stop_gracefully(): the stop becomes an abort at once
// instead of waiting for the graceful deadline.
TEST(server, stop_now_during_a_graceful_stop_aborts_at_once) {
    auto srv = start_echo();
    ASSERT_TRUE(srv);
    unique_fd c = test::connect_client(srv->local_endpoint());  // never sends its FIN
    ASSERT_TRUE(test::wait_for([&] { return srv->counts()[0] == 1; }));
    stop_summary graceful;
    std::thread stopper([&] { graceful = srv->stop_gracefully(deadline::after(10s)); });
    char b;
    ssize_t got = 0;
    while ((got = ::recv(c.get(), &b, 1, 0)) < 0 && errno == EINTR) {
    }
    EXPECT_EQ(got, 0) << "the graceful stop sent our FIN";
    const auto t0 = clock::now();
    (void)srv->stop_now();
    stopper.join();
    EXPECT_LT(clock::now() - t0, 3s) << "stop_now() waited for the graceful deadline";
    EXPECT_EQ(graceful.connections, 1U) << graceful.to_string();
    EXPECT_EQ(graceful.count(close_outcome::aborted), 1U) << graceful.to_string();
    EXPECT_TRUE(graceful.deadline_reached);
}

// A connection the application already put into close_gracefully() with a long timeout is still
// bounded by the server's stop deadline, and reported as timed out.
TEST(server, stop_deadline_bounds_connections_the_application_is_already_closing) {
    connection_callbacks cb;
    cb.on_open = [](connection& c) { c.close_gracefully(std::chrono::seconds(30)); };
    auto srv = start_echo({}, cb);
    ASSERT_TRUE(srv);
    unique_fd c = test::connect_client(srv->local_endpoint());  // never sends its FIN
    ASSERT_TRUE(test::wait_for(
        [&] { return srv->counts()[static_cast<std::size_t>(connection_state::closing)] == 1; }));
    const auto t0 = clock::now();
    const auto s = srv->stop_gracefully(deadline::after(200ms));
    EXPECT_LT(clock::now() - t0, 1s) << "the stop waited past its own deadline";
    EXPECT_EQ(s.count(close_outcome::timed_out), 1U) << s.to_string();
    EXPECT_TRUE(s.deadline_reached);
}

}  // namespace
}  // namespace orderly
