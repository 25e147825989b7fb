#include "orderly/event/server.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>

#include "uring.hpp"

namespace orderly {

namespace {

constexpr int accepts_per_event = 64;  // then let the loop serve its connections

std::string format_bytes(std::uint64_t b) {
    char buf[32];
    if (b >= (1U << 20)) {
        (void)std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1U << 20));
    } else if (b >= 1024) {
        (void)std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
    } else {
        (void)std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    }
    return buf;
}

// A close timeout for connection::close_gracefully from a deadline (never() would overflow).
clock::duration time_left(deadline until) {
    return std::min<clock::duration>(until.remaining(), std::chrono::hours(24));
}

}  // namespace

std::string stop_summary::to_string() const {
    std::string s =
        "stopped in " + std::to_string(std::chrono::duration_cast<milliseconds>(took).count()) +
        " ms: " + std::to_string(connections) + (connections == 1 ? " connection" : " connections");
    if (connections > 0) s += " (";
    bool first = true;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i] == 0) continue;
        if (!first) s += ", ";
        first = false;
        s += orderly::to_string(static_cast<close_outcome>(i));
        s += ' ';
        s += std::to_string(outcomes[i]);
    }
    if (connections > 0) s += ')';
    s += ", sent " + format_bytes(bytes_sent) + ", received " + format_bytes(bytes_received) +
         ", drained " + format_bytes(bytes_drained);
    if (deadline_reached) s += "; the deadline forced aborts";
    return s;
}

struct worker;

struct server::impl {
    server_options opts;
    endpoint local;
    // Bound to one address (not 0.0.0.0 or ::): every accepted connection has it as its local
    // endpoint, so adopt() need not ask getsockname.
    bool local_is_specific = false;
    unique_fd listen_fd;
    connection_callbacks user;
    std::shared_ptr<const connection_callbacks> callbacks;

    std::atomic<bool> starving{false};
    std::atomic<int> paused_workers{0};
    std::atomic<std::uint64_t> pauses{0};
    std::atomic<std::uint64_t> refusals{0};  // EMFILE/ENFILE seen in the current burst
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<bool> stopping{false};

    std::mutex mu;
    std::condition_variable cv;
    bool stopped = false;   // guarded by mu: a stop has begun
    bool joined = false;    // guarded by mu: ... and finished (threads joined)
    std::size_t began = 0;  // guarded by mu: loops that ran begin_stop
    bool forced = false;    // guarded by mu: connections were aborted to end the stop
    stop_summary summary;   // guarded by mu
    // Last, so destroyed first: a loop that still holds connections ends them in its destructor,
    // and their on_closed reaches record() and the registry through the members above.
    std::vector<std::unique_ptr<worker>> workers;

    void log(const std::string& line) const {
        if (opts.log) opts.log(line);
    }
    void record(const close_report& r) {
        if (!stopping.load(std::memory_order_acquire)) return;
        std::lock_guard lock(mu);
        summary.outcomes[static_cast<std::size_t>(r.outcome)]++;
        summary.connections++;
        summary.bytes_sent += r.bytes_sent;
        summary.bytes_received += r.bytes_received;
        summary.bytes_drained += r.bytes_drained;
    }
    void notify_removed() {
        if (!stopping.load(std::memory_order_acquire)) return;
        std::lock_guard lock(mu);
        cv.notify_all();
    }
    // Called by each loop once it has stopped accepting for good. The last one closes the
    // listener and only then lets every loop end its connections: no client sees the stop's FIN
    // while a newcomer could still complete a handshake nobody will serve (and be reset at exit).
    void began_stop(bool abort_all);
    void abort_all_connections();
    [[nodiscard]] std::size_t live() const noexcept;
    void descriptor_released(worker* from);
    stop_summary stop(deadline until, bool abort_all);
};

struct worker final : io_handler, detail::uring_target {
    worker(server::impl* s, const loop_options& lo) : srv(s), lp(lo) {
        reg.on_descriptor_released = [this] {
            if (srv->paused_workers.load(std::memory_order_acquire) > 0) {
                srv->descriptor_released(this);
            }
        };
        reg.on_removed = [this] { srv->notify_removed(); };
    }
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    ~worker() = default;

    void on_io(std::uint32_t /*events*/) override {
        // An event of the current batch may still name the listener after we stopped watching it
        // (paused, or stopping): once stopping, no new connection may start.
        if (watching) accept_some();
    }

    // io_uring: one multishot accept per loop (the kernel wakes one waiting accept per
    // connection, like EPOLLEXCLUSIVE); it ends on any error, EMFILE included.
    void on_completion(detail::uring_op op, int res, std::uint32_t flags) override {
        if (op == detail::uring_op::accept_cancel) {
            // The accept was running when the cancel came (it then reports -EALREADY): ask again.
            if (res == -EALREADY && accept_armed && !watching) cancel_accept();
            return;
        }
        if (op != detail::uring_op::accept) return;
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (!more) accept_armed = false;
        if (res >= 0) {
            adopt_accepted(res, nullptr, 0);
            if (more) note_recovered();  // the multishot goes on: the accept after it did not fail
        }
        if (!more && began_deferred) {
            began_deferred = false;
            srv->began_stop(began_abort_all);
            return;
        }
        if (res >= 0) {
            if (!more && watching) arm_accept();
            return;
        }
        // An error ended the multishot: start_watching() or pause() decides what comes next.
        if (res == -ECANCELED || !watching) return;
        watching = false;
        (void)accept_failed(-res);
    }

    void cancel_accept() {
        io_uring_sqe* sqe = lp.uring()->sqe();
        if (sqe == nullptr) return;
        const auto self = static_cast<detail::uring_target*>(this);
        io_uring_prep_cancel64(sqe, detail::uring_tag(self, detail::uring_op::accept), 0);
        sqe->user_data = detail::uring_tag(self, detail::uring_op::accept_cancel);
    }

    void arm_accept() {
        io_uring_sqe* sqe = lp.uring()->sqe();
        if (sqe == nullptr) {
            watching = false;
            return;
        }
        io_uring_prep_multishot_accept(sqe, srv->listen_fd.get(), nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
        sqe->user_data =
            detail::uring_tag(static_cast<detail::uring_target*>(this), detail::uring_op::accept);
        accept_armed = true;
    }

    [[nodiscard]] result<void> start_watching() {
        if (lp.uring() != nullptr) {
            watching = true;
            if (!accept_armed) arm_accept();
            if (!watching) return fail(errno_code(EBUSY));
            return {};
        }
        auto r = lp.watch(srv->listen_fd.get(), EPOLLIN | EPOLLEXCLUSIVE, this);
        watching = r.has_value();
        return r;
    }
    void stop_watching() {
        if (!watching) return;
        watching = false;
        if (lp.uring() != nullptr) {
            if (accept_armed) cancel_accept();
            return;
        }
        lp.unwatch(srv->listen_fd.get());
    }

    void accept_some() {
        int took = 0;
        for (int i = 0; i < accepts_per_event; ++i) {
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            const int fd = ::accept4(srv->listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                const int err = errno;
                if (err == EAGAIN) {
                    if (took > 0) note_recovered();  // the backlog drained: the burst is over
                    return;
                }
                if (!accept_failed(err)) return;
                continue;
            }
            adopt_accepted(fd, reinterpret_cast<sockaddr*>(&ss), len);
            ++took;
        }
        if (took > 0) note_recovered();
    }

    // Starvation ends, for the log, when accepting worked and the next attempt did not fail
    // again: one descriptor freed and taken at once by the next waiting client is the same
    // burst, not a new one (one line when it starts, one when it is over).
    void note_recovered() {
        if (srv->starving.load(std::memory_order_relaxed) && srv->starving.exchange(false)) {
            srv->log("accept: descriptors available again after " +
                     std::to_string(srv->refusals.exchange(0)) + " refusals; accepting resumed");
        }
    }

    // What an accept error means; true when accepting may go on at once.
    bool accept_failed(int err) {
        switch (err) {
            case EAGAIN:
            case EINTR:
            case ECONNABORTED:  // the client gave up while queued
            case EPROTO:
            case EPERM:  // a firewall said no to this one
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case ENETUNREACH:
                if (lp.uring() != nullptr && !stopping) start_watching_or_pause();
                return true;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                starved(err);
                return false;
            default:
                // Unknown: never spin on it; back off like for exhaustion.
                srv->log(std::string("accept: ") + errno_code(err).message());
                pause();
                return false;
        }
    }

    void start_watching_or_pause() {
        if (!start_watching()) pause();
    }

    void adopt_accepted(int fd, const sockaddr* sa, socklen_t len) {
        srv->accepted.fetch_add(1, std::memory_order_relaxed);
        std::optional<endpoint> peer;
        if (sa != nullptr) {
            if (auto p = endpoint::from_sockaddr(sa, len)) peer = *p;
        }
        unique_fd owned(fd);
        std::unique_ptr<stream_filter> filter;
        if (srv->opts.filter) {
            auto f = srv->opts.filter();
            if (!f) {
                srv->log("accept: cannot serve a connection: " + f.error().message());
                return;
            }
            filter = std::move(*f);
        }
        auto c = connection::adopt(lp, std::move(owned), std::move(filter), srv->callbacks,
                                   srv->opts.connection, &reg, peer ? &*peer : nullptr,
                                   srv->local_is_specific ? &srv->local : nullptr, true);
        if (!c) {
            srv->log("accept: cannot serve a connection: " + c.error().message());
            return;
        }
        // Accepted while stopping (the backlog taken in by begin_stop, or an io_uring accept
        // that completed before its cancel): end it like the others.
        if (ended) (*c)->close_gracefully(time_left(stop_until), srv->opts.stop_drain_limit);
    }

    void starved(int err) {
        srv->refusals.fetch_add(1, std::memory_order_relaxed);
        if (srv->opts.reserve_descriptor && reserve) {
            // Opt-in policy: spend the spare descriptor to tell one client "no" with a FIN.
            reserve.reset();
            const int fd = ::accept4(srv->listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) ::close(fd);
            reserve.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (!srv->starving.exchange(true)) {
                srv->log(std::string("accept: ") + errno_code(err).message() +
                         "; refusing new clients with the reserve descriptor");
            }
            if (reserve) {
                // epoll reports the listener again by itself; io_uring's accept has ended.
                if (lp.uring() != nullptr && !stopping) start_watching_or_pause();
                return;
            }
        }
        if (!srv->starving.exchange(true)) {
            srv->log(std::string("accept: ") + errno_code(err).message() +
                     "; paused accepting until a descriptor is released (clients wait in the "
                     "backlog)");
        }
        srv->pauses.fetch_add(1, std::memory_order_relaxed);
        pause();
    }

    void pause() {
        stop_watching();
        if (!paused) {
            paused = true;
            srv->paused_workers.fetch_add(1, std::memory_order_acq_rel);
        }
        if (backoff == 0) {
            backoff = lp.run_after(srv->opts.accept_backoff, [this] {
                backoff = 0;
                resume();
            });
        }
    }

    void resume() {
        if (!paused) return;
        paused = false;
        srv->paused_workers.fetch_sub(1, std::memory_order_acq_rel);
        if (backoff != 0) {
            lp.cancel(backoff);
            backoff = 0;
        }
        if (stopping) return;
        if (lp.uring() != nullptr) {
            // Take what waits in the backlog the way epoll would (until EAGAIN or EMFILE), so a
            // starved loop learns at once whether it is still starved; then the multishot.
            accept_some();
            if (paused || stopping) return;
        }
        // Level-triggered: if clients are queued, the next wait reports the listener at once.
        if (!start_watching()) pause();
    }

    void begin_stop(deadline until, bool abort_all) {
        stopping = true;
        stop_until = until;
        if (backoff != 0) {
            lp.cancel(backoff);
            backoff = 0;
        }
        if (paused) {
            paused = false;
            srv->paused_workers.fetch_sub(1, std::memory_order_acq_rel);
        }
        stop_watching();
        // Clients already queued in the backlog would get RST when the listener closes: take
        // them in and end them in order instead.
        if (!abort_all) accept_some();
        // On io_uring the kernel may still complete accepts until the multishot's final
        // completion: this loop has stopped accepting only then (on_completion reports it).
        if (accept_armed) {
            began_deferred = true;
            began_abort_all = abort_all;
            return;
        }
        // From here on this loop accepts nothing, so the stopper may count on its registry.
        srv->began_stop(abort_all);
    }

    // The second half of a stop, run on every loop once all of them have stopped accepting.
    void end_connections(bool abort_all) {
        ended = true;
        const auto left = time_left(stop_until);
        reg.for_each([&](connection& c) {
            if (abort_all) {
                c.abort();
            } else {
                c.close_gracefully(left, srv->opts.stop_drain_limit);
            }
        });
    }

    server::impl* srv;
    connection_registry reg;  // before lp: ~loop() may still remove connections from it
    loop lp;
    std::thread thread;
    bool watching = false;
    bool accept_armed = false;    // io_uring: the multishot accept is in flight
    bool ended = false;           // end_connections() ran
    bool began_deferred = false;  // io_uring: began_stop() waits for the final accept completion
    bool began_abort_all = false;
    std::atomic<bool> paused{false};  // read by other loops to decide whether to wake this one
    bool stopping = false;
    deadline stop_until;
    timer_id backoff = 0;
    unique_fd reserve;
};

std::size_t server::impl::live() const noexcept {
    std::size_t n = 0;
    for (const auto& w : workers)
        n += w->reg.size();
    return n;
}

void server::impl::descriptor_released(worker* from) {
    from->resume();
    for (auto& w : workers) {
        if (w.get() == from || !w->paused.load(std::memory_order_relaxed)) continue;
        worker* other = w.get();
        other->lp.post([other] { other->resume(); });
    }
}

void server::impl::began_stop(bool abort_all) {
    {
        std::lock_guard lock(mu);
        if (++began < workers.size()) {
            cv.notify_all();
            return;
        }
        // SHUT_RD stops a listening socket at once, even while an io_uring accept still holds a
        // reference to it (close alone would leave it listening until that request ends).
        (void)::shutdown(listen_fd.get(), SHUT_RD);
        listen_fd.reset();
        cv.notify_all();
    }
    for (auto& w : workers) {
        worker* p = w.get();
        p->lp.post([p, abort_all] { p->end_connections(abort_all); });
    }
}

void server::impl::abort_all_connections() {
    for (auto& w : workers) {
        worker* p = w.get();
        p->lp.post([p] { p->reg.for_each([](connection& c) { c.abort(); }); });
    }
}

stop_summary server::impl::stop(deadline until, bool abort_all) {
    const auto started = clock::now();
    {
        std::unique_lock lock(mu);
        if (stopped) {
            // Another call is stopping (or has stopped) the server. stop_now() turns a graceful
            // stop in progress into an abort; either way return once the threads are joined, so
            // that the caller may destroy the server.
            if (abort_all && !joined) {
                forced = true;
                lock.unlock();
                abort_all_connections();
                lock.lock();
            }
            // (Not from a callback, though: that loop could never be joined.)
            const bool on_a_loop = std::any_of(workers.begin(), workers.end(), [](const auto& w) {
                return w->lp.in_loop_thread();
            });
            if (!on_a_loop) cv.wait(lock, [this] { return joined; });
            return {};
        }
        stopped = true;
    }
    stopping.store(true, std::memory_order_release);
    for (auto& w : workers) {
        worker* p = w.get();
        p->lp.post([p, until, abort_all] { p->begin_stop(until, abort_all); });
    }
    {
        std::unique_lock lock(mu);
        // Every loop must have run begin_stop: until then it may accept a connection that the
        // registries do not show yet, and stopping its loop would leave that connection open.
        const auto done = [this] { return began == workers.size() && live() == 0; };
        if (until.is_never()) {
            cv.wait(lock, done);
        } else if (!cv.wait_until(lock, until.when() + std::chrono::seconds(1), done)) {
            // The connections abort themselves at the deadline; this is only a safety net.
            forced = true;
            lock.unlock();
            abort_all_connections();
            lock.lock();
            cv.wait_for(lock, std::chrono::seconds(1), done);
        }
    }
    for (auto& w : workers)
        w->lp.stop();
    for (auto& w : workers) {
        if (w->thread.joinable()) w->thread.join();
    }
    listen_fd.reset();
    std::lock_guard lock(mu);
    joined = true;
    cv.notify_all();
    stop_summary s = summary;
    s.took = clock::now() - started;
    s.deadline_reached = abort_all || forced || s.count(close_outcome::timed_out) > 0;
    return s;
}

server::server(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}

server::~server() {
    if (impl_) (void)impl_->stop(deadline::after(clock::duration::zero()), true);
}

result<std::unique_ptr<server>, error_info> server::start(const endpoint& at,
                                                          connection_callbacks callbacks,
                                                          server_options opts) {
    auto l = listener::listen(at, opts.listen);
    if (!l) return fail(l.error().code, l.error().detail);
    return start(std::move(*l), std::move(callbacks), std::move(opts));
}

result<std::unique_ptr<server>, error_info> server::start(listener l,
                                                          connection_callbacks callbacks,
                                                          server_options opts) {
    if (!l.is_open()) {
        return fail(make_error_code(errc::not_open), "server::start: the listener is not open");
    }
    auto p = std::make_unique<impl>();
    p->local = l.local_endpoint();
    p->local_is_specific = p->local.is_ip() && p->local.with_port(0) != endpoint::ipv4_any(0) &&
                           p->local.with_port(0) != endpoint::ipv6_any(0);
    p->listen_fd = l.release();
    // Several loops accept from it; the ones that lose the race must get EAGAIN, not block.
    const int flags = ::fcntl(p->listen_fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(p->listen_fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
        return fail(errno_code(errno), "fcntl O_NONBLOCK on the listener");
    }
    p->opts = std::move(opts);
    p->user = std::move(callbacks);
    impl* raw = p.get();
    connection_callbacks wrapped = p->user;
    wrapped.on_closed = [raw](connection& c, const close_report& r) {
        if (raw->user.on_closed) raw->user.on_closed(c, r);
        raw->record(r);
    };
    if (!wrapped.on_close_wait) {
        wrapped.on_close_wait = [raw](connection& c) {
            raw->log("CLOSE_WAIT: connection " + std::to_string(c.id()) + " from " +
                     c.peer_endpoint().to_string() +
                     ": the peer sent FIN and the application has not closed it");
        };
    }
    p->callbacks = std::make_shared<const connection_callbacks>(std::move(wrapped));

    unsigned n = p->opts.threads != 0 ? p->opts.threads : std::thread::hardware_concurrency();
    n = std::max(1U, n);
    try {
        for (unsigned i = 0; i < n; ++i) {
            auto w = std::make_unique<worker>(raw, p->opts.loop);
            if (p->opts.reserve_descriptor) {
                w->reserve.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            }
            if (auto r = w->start_watching(); !r) {
                return fail(r.error(), "epoll_ctl on the listener");
            }
            p->workers.push_back(std::move(w));
        }
    } catch (const std::system_error& e) {
        return fail(e.code(), std::string("creating a loop: ") + e.what());
    }
    for (auto& w : p->workers) {
        worker* wp = w.get();
        wp->thread = std::thread([wp] { wp->lp.run(); });
    }
    return std::unique_ptr<server>(new server(std::move(p)));
}

const endpoint& server::local_endpoint() const noexcept {
    return impl_->local;
}
std::size_t server::thread_count() const noexcept {
    return impl_->workers.size();
}

stop_summary server::stop_gracefully(deadline until) {
    return impl_->stop(until, false);
}
stop_summary server::stop_now() {
    return impl_->stop(deadline::after(clock::duration::zero()), true);
}

state_counts server::counts() const noexcept {
    state_counts total{};
    for (const auto& w : impl_->workers) {
        const auto c = w->reg.counts();
        for (std::size_t i = 0; i < total.size(); ++i)
            total[i] += c[i];
    }
    return total;
}

std::vector<connection_info> server::connections() const {
    std::vector<connection_info> out;
    if (impl_->stopping.load(std::memory_order_acquire)) return out;  // loops may be gone
    for (const auto& w : impl_->workers) {
        auto done = std::make_shared<std::promise<std::vector<connection_info>>>();
        auto f = done->get_future();
        worker* p = w.get();
        p->lp.post([p, done] { done->set_value(p->reg.snapshot()); });
        if (f.wait_for(std::chrono::seconds(1)) != std::future_status::ready) continue;
        auto part = f.get();
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

std::uint64_t server::accept_pauses() const noexcept {
    return impl_->pauses.load();
}
std::uint64_t server::accepted() const noexcept {
    return impl_->accepted.load();
}

}  // namespace orderly
