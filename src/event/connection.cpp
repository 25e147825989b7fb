#include "orderly/event/connection.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>

#include "orderly/core/errc.hpp"
#include "orderly/event/registry.hpp"
#include "orderly/net/socket_options.hpp"
#include "orderly/net/tcp_info.hpp"
#include "sys.hpp"

namespace orderly {

namespace {

std::atomic<std::uint64_t> next_connection_id{1};

// Reads beyond one full buffer per readiness event are bounded so that one busy peer cannot
// starve the other connections of the loop (level triggering brings us back for the rest).
constexpr int max_reads_per_event = 8;
// Keep the output buffer's memory after it drains up to this size (reuse without allocating);
// beyond it, give it back.
constexpr std::size_t keep_capacity = 256U << 10;

}  // namespace

std::string_view to_string(connection_state s) noexcept {
    switch (s) {
        case connection_state::open:
            return "open";
        case connection_state::half_closed_by_peer:
            return "half_closed_by_peer";
        case connection_state::half_closed_by_us:
            return "half_closed_by_us";
        case connection_state::closing:
            return "closing";
        case connection_state::closed:
            return "closed";
    }
    return "?";
}

std::string_view to_string(timeout_kind k) noexcept {
    switch (k) {
        case timeout_kind::none:
            return "none";
        case timeout_kind::idle:
            return "idle";
        case timeout_kind::read:
            return "read";
        case timeout_kind::write:
            return "write";
        case timeout_kind::close:
            return "close";
        case timeout_kind::lifetime:
            return "lifetime";
    }
    return "?";
}

result<connection_ptr> connection::adopt(loop& lp, unique_fd fd,
                                         std::shared_ptr<const connection_callbacks> callbacks,
                                         const connection_options& opts,
                                         connection_registry* registry, const endpoint* peer,
                                         const endpoint* local, bool nonblocking) {
    if (!fd) return fail(make_error_code(errc::not_open));
    if (!nonblocking) {
        const int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0) return fail(errno_code(errno));
        if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
            return fail(errno_code(errno));
        }
    }
    if (!callbacks) callbacks = std::make_shared<const connection_callbacks>();
    auto c = std::make_shared<connection>(private_tag{}, lp, std::move(fd), std::move(callbacks),
                                          opts, registry);
    c->peer_ = peer != nullptr ? *peer : peer_endpoint_of(c->fd_.get()).value_or(endpoint{});
    c->local_ = local != nullptr ? *local : local_endpoint_of(c->fd_.get()).value_or(endpoint{});
    if (opts.nodelay && c->local_.is_ip()) (void)set_nodelay(c->fd_.get(), true);
    if (auto r = lp.watch(c->fd_.get(), EPOLLIN, c.get()); !r) return fail(r.error());
    c->interest_ = EPOLLIN;
    c->self_ = c;
    if (registry != nullptr) registry->add(c.get());
    c->schedule_timer();
    if (c->callbacks_->on_open) c->callbacks_->on_open(*c);
    return c;
}

connection::connection(private_tag, loop& lp, unique_fd fd,
                       std::shared_ptr<const connection_callbacks> callbacks,
                       const connection_options& opts, connection_registry* registry)
    : loop_(&lp),
      fd_(std::move(fd)),
      callbacks_(std::move(callbacks)),
      opts_(opts),
      registry_(registry),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      opened_at_(clock::now()),
      last_read_(opened_at_),
      last_write_(opened_at_),
      state_since_(opened_at_) {
    if (opts_.low_water > opts_.high_water) opts_.low_water = opts_.high_water;
}

// Reached only once closed (self_ keeps an open connection alive), or if adopt() failed.
connection::~connection() = default;

bool connection::wants_read() const noexcept {
    if (!fd_ || peer_eof_) return false;
    return closing_ || (!user_paused_ && !backpressure_paused_);
}

void connection::update_interest() {
    if (!fd_) return;
    const std::uint32_t want =
        (wants_read() ? EPOLLIN : 0U) | (out_head_ < out_.size() ? EPOLLOUT : 0U);
    if (parked_) {
        // Unwatched since an EPOLLHUP that came while reading was paused: come back only when
        // there is something to do, or epoll would report the hang-up again at once.
        if (want == 0) return;
        if (auto r = loop_->watch(fd_.get(), want, this); !r) {
            finish(close_outcome::error, method_, r.error(), true);
            return;
        }
        parked_ = false;
        interest_ = want;
        return;
    }
    if (want == interest_) return;  // the common case: no syscall
    if (auto r = loop_->rewatch(fd_.get(), want, this); !r) {
        finish(close_outcome::error, close_method::close, r.error(), true);
        return;
    }
    interest_ = want;
}

void connection::refresh_state() {
    connection_state s = connection_state::open;
    if (!fd_) {
        s = connection_state::closed;
    } else if (closing_ || (peer_eof_ && fin_wanted_)) {
        s = connection_state::closing;
    } else if (fin_wanted_) {
        s = connection_state::half_closed_by_us;
    } else if (peer_eof_) {
        s = connection_state::half_closed_by_peer;
    }
    if (s == state_) return;
    if (registry_ != nullptr && reg_prev_ != this) registry_->moved(state_, s);
    state_ = s;
    state_since_ = loop_->now();
}

void connection::on_io(std::uint32_t events) {
    if (!fd_) return;  // ended earlier in this batch; the event is stale
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && wants_read()) {
        // With EPOLLHUP the peer's FIN may sit behind the data: read on to EOF or EAGAIN.
        handle_read((events & EPOLLHUP) != 0);
        if (!fd_) return;
    }
    if ((events & EPOLLOUT) != 0 ||
        ((events & (EPOLLERR | EPOLLHUP)) != 0 && out_head_ < out_.size())) {
        if (!flush()) return;
    }
    if ((events & EPOLLERR) != 0) {
        auto err = take_socket_error(fd_.get());
        if (err && *err != 0) {
            end_by_errno(*err);
            return;
        }
    }
    if ((events & EPOLLHUP) != 0) {
        if (!peer_eof_ && !wants_read() && out_head_ == out_.size()) {
            // Reading is paused (before this event or by on_data just now) and the peer's data
            // and FIN may still wait in the socket: they belong to the application, so this is
            // not a reset. epoll reports EPOLLHUP whatever we watch, so stop watching until
            // reading resumes (or close_gracefully() wants the drain) instead of spinning.
            loop_->unwatch(fd_.get());
            parked_ = true;
            interest_ = 0;
            return;
        }
        // Both directions are down in the kernel (a RST whose error was already consumed):
        // nothing more can move, and level triggering would report it forever.
        if (peer_eof_ && fin_sent_) {
            finish_clean();
        } else {
            finish(close_outcome::peer_reset, method_, errno_code(ECONNRESET), false);
        }
    }
}

void connection::handle_read(bool to_eagain) {
    const std::span<std::byte> buf = loop_->read_buffer();
    for (int round = 0; to_eagain || round < max_reads_per_event; ++round) {
        const ssize_t n = detail::sys_recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
            const auto got = static_cast<std::size_t>(n);
            last_read_ = loop_->now();
            if (closing_) {
                bytes_drained_ += got;
                if (bytes_drained_ > drain_limit_) {
                    finish(close_outcome::drain_limit, close_method::graceful,
                           make_error_code(errc::drain_limit), true);
                    return;
                }
            } else {
                bytes_received_ += got;
                if (callbacks_->on_data) callbacks_->on_data(*this, buf.first(got));
                if (!fd_) return;
            }
            // A short read emptied the socket: go back to epoll instead of paying for EAGAIN.
            if ((got < buf.size() && !to_eagain) || !wants_read()) return;
            continue;
        }
        if (n == 0) {
            handle_peer_eof();
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        end_by_errno(errno);
        return;
    }
}

void connection::handle_peer_eof() {
    peer_eof_ = true;
    peer_eof_at_ = loop_->now();
    refresh_state();
    if (fin_sent_) {
        finish_clean();
        return;
    }
    if (!fin_wanted_) {  // else FIN follows when the output drains; then we are done
        schedule_timer();
        if (callbacks_->on_peer_eof) callbacks_->on_peer_eof(*this);
    }
    // A level-triggered EOF would be reported forever: stop reading. After the callback, so that
    // the common "reply, shutdown_write, done" ends the connection without this epoll_ctl.
    update_interest();
}

result<void> connection::write(std::span<const std::byte> data) {
    if (!fd_) return fail(make_error_code(errc::connection_closed));
    if (fin_wanted_) return fail(make_error_code(errc::write_shut));
    if (data.empty()) return {};
    std::size_t sent = 0;
    if (out_head_ == out_.size()) {
        // Nothing queued: give it to the kernel first; most writes never touch the buffer.
        for (;;) {
            const ssize_t n = detail::sys_send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n >= 0) {
                sent = static_cast<std::size_t>(n);
                bytes_sent_ += sent;
                last_write_ = loop_->now();
                break;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            const int err = errno;
            end_by_errno(err);
            return fail(err == EPIPE || err == ECONNRESET ? make_error_code(errc::peer_reset)
                                                          : errno_code(err));
        }
        if (sent == data.size()) return {};
        last_write_ = loop_->now();  // the write timeout counts from when output became pending
    }
    const bool was_empty = out_head_ == out_.size();
    out_.insert(out_.end(), data.begin() + static_cast<std::ptrdiff_t>(sent), data.end());
    if (!above_high_ && buffered_bytes() > opts_.high_water) {
        above_high_ = true;
        if (opts_.pause_reading_on_backpressure) backpressure_paused_ = true;
        update_interest();
        if (!fd_) return fail(make_error_code(errc::connection_closed));
        if (callbacks_->on_backpressure) callbacks_->on_backpressure(*this, true);
    } else if (was_empty) {
        update_interest();
        if (!fd_) return fail(make_error_code(errc::connection_closed));
    }
    if (was_empty && opts_.write_timeout.count() > 0) schedule_timer();
    return {};
}

bool connection::flush() {
    while (out_head_ < out_.size()) {
        const std::size_t want = out_.size() - out_head_;
        const ssize_t n = detail::sys_send(fd_.get(), out_.data() + out_head_, want, MSG_NOSIGNAL);
        if (n > 0) {
            out_head_ += static_cast<std::size_t>(n);
            bytes_sent_ += static_cast<std::size_t>(n);
            last_write_ = loop_->now();
            if (static_cast<std::size_t>(n) < want) break;  // the socket buffer is full
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        end_by_errno(n < 0 ? errno : EPIPE);
        return false;
    }
    after_output_progress();
    return static_cast<bool>(fd_);
}

void connection::after_output_progress() {
    const bool drained = out_head_ == out_.size();
    if (drained) {
        out_head_ = 0;
        out_.clear();
        if (out_.capacity() > keep_capacity) std::vector<std::byte>().swap(out_);
    } else if (out_head_ >= keep_capacity / 4 && out_head_ * 2 >= out_.size()) {
        // Compact once the consumed prefix dominates, so memory tracks what is still owed.
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
        out_head_ = 0;
    }
    if (above_high_ && buffered_bytes() <= opts_.low_water) {
        above_high_ = false;
        const bool resumed = backpressure_paused_;
        if (resumed) {
            backpressure_paused_ = false;
            last_read_ = loop_->now();  // the read timeout restarts with reading
        }
        update_interest();
        if (!fd_) return;
        if (resumed) schedule_timer();
        if (callbacks_->on_backpressure) callbacks_->on_backpressure(*this, false);
        if (!fd_) return;
    }
    if (fin_wanted_ && !fin_sent_ && out_head_ == out_.size()) {
        send_fin();
        if (!fd_) return;
    }
    update_interest();
    if (drained && fd_ && callbacks_->on_drained) callbacks_->on_drained(*this);
}

void connection::send_fin() {
    if (::shutdown(fd_.get(), SHUT_WR) != 0) {
        end_by_errno(errno);  // ENOTCONN: the peer is already gone
        return;
    }
    fin_sent_ = true;
    if (peer_eof_) finish_clean();
}

void connection::shutdown_write() {
    if (!fd_ || fin_wanted_) return;
    fin_wanted_ = true;
    method_ = close_method::graceful;
    refresh_state();
    if (out_head_ == out_.size()) send_fin();
}

void connection::close_gracefully(clock::duration timeout, std::uint64_t drain_limit) {
    if (!fd_) return;
    if (closing_) {
        // Already closing: a later call can only tighten the bounds (e.g. a server stop whose
        // deadline comes before the one the application chose).
        drain_limit_ = std::min(drain_limit_, drain_limit);
        if (timeout <= clock::duration::zero()) {
            timeout_fired_ = timeout_kind::close;
            finish(close_outcome::timed_out, close_method::graceful,
                   make_error_code(errc::timed_out), true);
            return;
        }
        const auto until = clock::now() + timeout;
        if (until < close_deadline_) {
            close_deadline_ = until;
            schedule_timer();
        }
        return;
    }
    closing_ = true;
    method_ = close_method::graceful;
    close_started_ = clock::now();
    close_deadline_ = close_started_ + timeout;
    drain_limit_ = drain_limit;
    fin_wanted_ = true;
    refresh_state();
    if (timeout <= clock::duration::zero()) {
        timeout_fired_ = timeout_kind::close;
        finish(close_outcome::timed_out, close_method::graceful, make_error_code(errc::timed_out),
               true);
        return;
    }
    if (out_head_ == out_.size() && !fin_sent_) {
        send_fin();
        if (!fd_) return;
    } else if (peer_eof_ && fin_sent_) {
        finish_clean();
        return;
    }
    update_interest();  // reading resumes even if paused: the peer's bytes must be drained
    if (fd_) schedule_timer();
}

void connection::abort() {
    finish(close_outcome::aborted, close_method::abort, make_error_code(errc::aborted), true);
}

void connection::close() {
    const close_outcome o = peer_eof_ && fin_sent_ ? close_outcome::clean : close_outcome::closed;
    finish(o, close_method::close, {}, false);
}

void connection::pause_reading() {
    user_paused_ = true;
    update_interest();
}

void connection::resume_reading() {
    if (!user_paused_) return;
    user_paused_ = false;
    last_read_ = loop_->now();
    update_interest();
    schedule_timer();  // the read timeout, off while paused, applies again
}

clock::time_point connection::next_deadline() const noexcept {
    const auto plus = [](clock::time_point a, clock::duration d) {
        return d.count() > 0 ? a + d : clock::time_point::max();
    };
    auto t = plus(opened_at_, opts_.lifetime_timeout);
    if (closing_) return std::min(t, close_deadline_);
    t = std::min(t, plus(std::max(last_read_, last_write_), opts_.idle_timeout));
    if (!peer_eof_ && !user_paused_ && !backpressure_paused_) {
        t = std::min(t, plus(last_read_, opts_.read_timeout));
    }
    if (out_head_ < out_.size() || ack_timer_ != 0) {
        t = std::min(t, plus(last_write_, opts_.write_timeout));
    }
    if (state_ == connection_state::half_closed_by_peer && !close_wait_reported_) {
        t = std::min(t, plus(peer_eof_at_, opts_.close_wait_after));
    }
    return t;
}

// Activity only ever moves deadlines later, so it does not touch the timer: the armed one fires
// early, finds nothing due and re-arms for the real deadline. Only a deadline that moves earlier
// (close_gracefully, output becoming pending, peer EOF) re-arms here.
void connection::schedule_timer() {
    if (!fd_) return;  // ended (perhaps by a callback just now): a timer would outlive us
    const auto t = next_deadline();
    if (t == clock::time_point::max()) return;
    if (timer_ != 0 && timer_at_ <= t) return;
    if (timer_ != 0) loop_->cancel(timer_);
    timer_at_ = t;
    timer_ = loop_->run_at(t, [this] { on_timer(); });
}

void connection::on_timer() {
    timer_ = 0;
    timer_at_ = clock::time_point::max();
    if (!fd_) return;
    const auto now = loop_->now();
    const auto due = [now](clock::time_point a, clock::duration d) {
        return d.count() > 0 && now >= a + d;
    };
    timeout_kind fired = timeout_kind::none;
    if (closing_ && now >= close_deadline_) {
        fired = timeout_kind::close;
    } else if (due(opened_at_, opts_.lifetime_timeout)) {
        fired = timeout_kind::lifetime;
    } else if (!closing_) {  // while closing, only the close deadline and the lifetime count
        if ((out_head_ < out_.size() || ack_timer_ != 0) && due(last_write_, opts_.write_timeout)) {
            fired = timeout_kind::write;
        } else if (!peer_eof_ && !user_paused_ && !backpressure_paused_ &&
                   due(last_read_, opts_.read_timeout)) {
            fired = timeout_kind::read;
        } else if (due(std::max(last_read_, last_write_), opts_.idle_timeout)) {
            fired = timeout_kind::idle;
        }
    }
    if (fired != timeout_kind::none) {
        timeout_fired_ = fired;
        finish(close_outcome::timed_out, closing_ ? close_method::graceful : close_method::abort,
               make_error_code(errc::timed_out), true);
        return;
    }
    if (state_ == connection_state::half_closed_by_peer && !close_wait_reported_ &&
        due(peer_eof_at_, opts_.close_wait_after)) {
        close_wait_reported_ = true;
        if (callbacks_->on_close_wait) callbacks_->on_close_wait(*this);
        if (!fd_) return;
    }
    schedule_timer();
}

// Both FINs are out. `clean` also promises that the peer's kernel acknowledged every byte we
// sent and our FIN: with a peer that half-closed and stopped reading, the FIN exchange completes
// while megabytes may still sit in our send queue. The kernel has no readiness event for "send
// queue empty", so poll for it (on loopback it is empty at once), unwatched: epoll would report
// the hang-up of both directions at once and forever. The close deadline (close_gracefully) or
// the idle timeout bound the wait. Unix sockets have no acknowledgement to wait for.
void connection::finish_clean() {
    if (ack_timer_ != 0) return;  // already waiting
    if (local_.is_ip()) {
        auto info = read_tcp_info(fd_.get());
        if (info && info->send_queue_bytes > 0) {
            if (!parked_) {
                loop_->unwatch(fd_.get());
                parked_ = true;
                interest_ = 0;
            }
            ack_poll_ms_ = std::min<std::uint8_t>(ack_poll_ms_ == 0 ? 1 : 2 * ack_poll_ms_, 64);
            ack_timer_ = loop_->run_after(std::chrono::milliseconds(ack_poll_ms_), [this] {
                ack_timer_ = 0;
                if (!fd_) return;
                if (auto err = take_socket_error(fd_.get()); err && *err != 0) {
                    end_by_errno(*err);  // the peer reset instead of acknowledging
                    return;
                }
                finish_clean();
            });
            schedule_timer();  // the write timeout also bounds the wait for acknowledgements
            return;
        }
        if (info) {
            finish(close_outcome::clean, method_, {}, false, &*info);
            return;
        }
    }
    finish(close_outcome::clean, method_, {}, false);
}

void connection::end_by_errno(int err) {
    // method_: how the end was asked for (graceful after shutdown_write/close_gracefully).
    if (err == ECONNRESET || err == EPIPE) {
        finish(close_outcome::peer_reset, method_, errno_code(err), false);
    } else {
        finish(close_outcome::error, method_, errno_code(err), false);
    }
}

void connection::finish(close_outcome outcome, close_method method, std::error_code ec,
                        bool abortive, const tcp_info_snapshot* known_tcp) {
    if (!fd_) return;
    const int fd = fd_.get();
    const auto now = clock::now();
    if (timer_ != 0) {
        loop_->cancel(timer_);
        timer_ = 0;
    }
    if (ack_timer_ != 0) {
        loop_->cancel(ack_timer_);
        ack_timer_ = 0;
    }
    report_ = std::make_unique<close_report>();
    close_report& r = *report_;
    // The last look at the kernel's state, taken just before the descriptor goes. TCP_INFO
    // comes with the queue sizes; a Unix socket has only the queues.
    bool queues_read = false;
    std::optional<tcp_info_snapshot> info;
    if (known_tcp != nullptr) {
        info = *known_tcp;
    } else if (local_.is_ip()) {
        if (auto got = read_tcp_info(fd)) info = *got;
    }
    if (info) {
        r.tcp = *info;
        r.unread_bytes = info->recv_queue_bytes;
        r.unacked_bytes = info->send_queue_bytes;
        queues_read = true;
    } else if (auto q = read_queue_sizes(fd)) {
        r.unread_bytes = q->unread;
        r.unacked_bytes = q->unsent_or_unacked;
        queues_read = true;
    }
    if (!abortive && r.unread_bytes > 0 &&
        (outcome == close_outcome::clean || outcome == close_outcome::closed)) {
        outcome = close_outcome::unread_data_discarded;  // close() below makes Linux send RST
    }
    if (abortive) {
        (void)set_linger(fd, std::chrono::seconds(0));
    } else if (!(fin_sent_ && queues_read && r.unacked_bytes == 0)) {
        // A positive SO_LINGER (set by the application on the descriptor) would make close()
        // block the loop thread until the output and our FIN are acknowledged or the linger
        // time passes. (Nothing to wait for when our FIN is already acknowledged: no syscall.)
        if (auto l = get_linger(fd); l && *l && **l > std::chrono::seconds(0)) {
            (void)set_linger(fd, std::nullopt);
        }
    }
    if (!parked_) loop_->unwatch(fd);  // before close: the number may be reused at once
    parked_ = false;
    fd_.reset();
    interest_ = 0;

    r.outcome = outcome;
    r.method = method;
    r.error = ec;
    r.bytes_sent = bytes_sent_;
    r.bytes_received = bytes_received_;
    r.bytes_drained = bytes_drained_;
    r.fin_sent = fin_sent_;
    r.peer_eof = peer_eof_;
    r.close_duration = closing_ ? now - close_started_ : clock::duration::zero();
    r.lifetime = now - opened_at_;
    r.local = local_;
    r.peer = peer_;
    std::vector<std::byte>().swap(out_);
    out_head_ = 0;
    refresh_state();
    if (registry_ != nullptr && registry_->on_descriptor_released) {
        registry_->on_descriptor_released();
    }
    // on_closed and our destruction wait until the callbacks of this batch have returned: one
    // of them may be on the stack right now, and a later event of the batch may name us.
    loop_->defer([this] {
        connection_ptr keep = std::move(self_);
        if (callbacks_->on_closed) callbacks_->on_closed(*this, *report_);
        if (registry_ != nullptr) registry_->remove(this);
    });
}

}  // namespace orderly
