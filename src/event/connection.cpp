// connection: the part every backend shares — the application's calls and callbacks, the output
// buffer's accounting, and the end_machine that decides when to send FIN, when to drain and when
// the end is reached (its timers: connection_timers.cpp). Moving bytes is the backend's
// (connection_epoll.cpp, connection_uring.cpp); judging the outcome is end_rules'.

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
#include "uring.hpp"

namespace orderly {

namespace {

std::atomic<std::uint64_t> next_connection_id{1};

// Keep the output buffer's memory after it drains up to this size (reuse without allocating);
// beyond it, give it back.
constexpr std::size_t keep_capacity = 256U << 10;

end_limits limits_of(const connection_options& o) noexcept {
    end_limits l;
    l.idle = o.idle_timeout;
    l.read = o.read_timeout;
    l.write = o.write_timeout;
    l.lifetime = o.lifetime_timeout;
    l.close_wait_after = o.close_wait_after;
    l.handshake = o.handshake_timeout;
    return l;
}

}  // namespace

result<connection_ptr> connection::adopt(loop& lp, unique_fd fd,
                                         std::shared_ptr<const connection_callbacks> callbacks,
                                         const connection_options& opts,
                                         connection_registry* registry, const endpoint* peer,
                                         const endpoint* local, bool nonblocking) {
    return adopt(lp, std::move(fd), nullptr, std::move(callbacks), opts, registry, peer, local,
                 nonblocking);
}

result<connection_ptr> connection::adopt(loop& lp, unique_fd fd,
                                         std::unique_ptr<stream_filter> filter,
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
    if (filter) {
        c->filter_ = std::move(filter);
        c->end_.set_tls();
        c->end_.handshake_started();
    }
    if (lp.uring() != nullptr) {
        c->uring_ = true;
        c->uring_sync_reading();  // the multishot recv
        if (!c->recv_armed_) return fail(errno_code(EBUSY));
    } else {
        if (auto r = lp.watch(c->fd_.get(), EPOLLIN, c.get()); !r) return fail(r.error());
        c->interest_ = EPOLLIN;
    }
    c->self_ = c;
    lp.link(c.get());
    if (registry != nullptr) registry->add(c.get());
    c->schedule_timer();
    if (c->filter_) {
        c->filter_->start();         // a client's ClientHello; on_open once the handshake is done
        (void)c->send_ciphertext();  // if it ended at once, on_closed follows
        return c;
    }
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
      end_(limits_of(opts), clock::now()),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)) {
    if (opts_.low_water > opts_.high_water) opts_.low_water = opts_.high_water;
}

// Reached only once closed (self_ keeps an open connection alive), or if adopt() failed.
connection::~connection() {
    loop_->unlink(this);
}

void connection::refresh_state() {
    const connection_state before = end_.current_state();
    if (!end_.refresh_state(loop_->now())) return;
    if (registry_ != nullptr && reg_prev_ != this) registry_->moved(before, end_.current_state());
}

void connection::reading_changed() {
    if (filter_ && end_.wants_read()) {
        pump_plaintext();  // records decrypted while paused come before any new read
        if (!fd_) return;
    }
    sync_transport();
}

void connection::sync_transport() {
    if (uring_) {
        // Output needs no interest: a send in flight completes by itself. Reading needs nothing
        // while the recv is armed and nothing waits to be delivered (the common case).
        if (recv_armed_ && stash_head_ == stash_.size() && !stash_eof_) return;
        uring_sync_reading();
    } else {
        update_interest();
    }
}

// --- Data in. ---

void connection::deliver(std::span<const std::byte> data) {
    if (filter_) {
        filter_in(data);
        return;
    }
    deliver_plain(data);
}

void connection::deliver_plain(std::span<const std::byte> data) {
    end_.read_progress(loop_->now());
    if (end_.is_closing()) {
        if (!end_.drain(data.size())) {
            end_with(close_outcome::drain_limit, close_method::graceful,
                     make_error_code(errc::drain_limit));
        }
        return;
    }
    bytes_received_ += data.size();
    if (callbacks_->on_data) callbacks_->on_data(*this, data);
}

void connection::peer_eof_read() {
    if (filter_) {
        filter_tcp_eof();
        return;
    }
    peer_end();
}

void connection::peer_end() {
    end_.peer_eof(loop_->now());
    refresh_state();
    if (end_.fin_was_sent()) {
        if (end_.both_done()) {
            settle();
        } else {
            reading_changed();  // TLS: on to the peer's FIN
        }
        return;
    }
    if (!end_.fin_wanted()) {  // else FIN follows when the output drains; then we are done
        schedule_timer();
        if (callbacks_->on_peer_eof) callbacks_->on_peer_eof(*this);
        if (!fd_) return;
    }
    // A level-triggered EOF would be reported forever: stop reading. After the callback, so that
    // the common "reply, shutdown_write, done" ends the connection without this epoll_ctl.
    reading_changed();
}

// --- Data out. ---

result<void> connection::write(std::span<const std::byte> data) {
    if (!fd_) return fail(make_error_code(errc::connection_closed));
    if (end_.fin_wanted()) return fail(make_error_code(errc::write_shut));
    if (data.empty()) return {};
    if (filter_) return write_filtered(data);
    if (uring_) return uring_write(data);
    return write_raw(data);
}

// Bytes for the kernel: over TLS the ciphertext (also after shutdown_write: close_notify).
result<void> connection::write_raw(std::span<const std::byte> data) {
    if (uring_) return uring_write(data);
    const bool was_empty = raw_pending() == 0;
    std::size_t sent = 0;
    if (was_empty) {
        // Nothing queued: give it to the kernel first; most writes never touch the buffer.
        for (;;) {
            const ssize_t n = detail::sys_send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n >= 0) {
                sent = static_cast<std::size_t>(n);
                bytes_sent_ += sent;
                end_.write_progress(loop_->now());
                break;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            const int err = errno;
            end_by_errno(err);
            return fail(is_reset_errno(err) ? make_error_code(errc::peer_reset) : errno_code(err));
        }
        if (sent == data.size()) return {};
        end_.write_progress(loop_->now());  // the write timeout counts from when output is pending
    }
    out_.insert(out_.end(), data.begin() + static_cast<std::ptrdiff_t>(sent), data.end());
    return after_queued(was_empty);
}

// Output is now pending: backpressure above the high-water mark, and the write timeout.
result<void> connection::after_queued(bool was_empty) {
    if (!above_high_ && buffered_bytes() > opts_.high_water) {
        above_high_ = true;
        if (opts_.pause_reading_on_backpressure) end_.set_backpressure_paused(true, loop_->now());
        sync_transport();
        if (!fd_) return fail(make_error_code(errc::connection_closed));
        if (callbacks_->on_backpressure) callbacks_->on_backpressure(*this, true);
    } else if (was_empty) {
        sync_transport();  // epoll: watch for EPOLLOUT
        if (!fd_) return fail(make_error_code(errc::connection_closed));
    }
    if (was_empty && opts_.write_timeout.count() > 0) schedule_timer();
    return {};
}

void connection::after_output_progress() {
    const bool drained = !output_pending();
    if (drained) {
        out_head_ = 0;
        out_.clear();
        if (out_.capacity() > keep_capacity) std::vector<std::byte>().swap(out_);
        if (inflight_.capacity() > keep_capacity) std::vector<std::byte>().swap(inflight_);
    } else if (out_head_ >= keep_capacity / 4 && out_head_ * 2 >= out_.size()) {
        // Compact once the consumed prefix dominates, so memory tracks what is still owed.
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
        out_head_ = 0;
    }
    bool synced = false;
    if (above_high_ && buffered_bytes() <= opts_.low_water) {
        above_high_ = false;
        const bool resumed = end_.backpressure_paused();
        if (resumed) end_.set_backpressure_paused(false, loop_->now());
        // Told before reading resumes: on io_uring the resume delivers what was read ahead
        // (maybe the peer's EOF and so the end), and on_data must not come before this.
        if (callbacks_->on_backpressure) callbacks_->on_backpressure(*this, false);
        if (!fd_) return;
        // Not sync_transport(): over TLS the filter may hold records decrypted while paused,
        // which no new read would bring (reading_changed() delivers them first).
        reading_changed();
        if (!fd_) return;
        if (resumed && end_.may_have_deadline()) schedule_timer();
        synced = true;  // nothing since has changed what reading or output wants
    }
    if (end_.fin_due(!output_pending())) {
        send_fin();
        if (!fd_) return;
        synced = false;
    }
    if (!synced) sync_transport();
    // (Not for a handshake's own flights: the application has not written, nor had on_open.)
    if (drained && fd_ && callbacks_->on_drained && (!filter_ || filter_->handshake_done())) {
        callbacks_->on_drained(*this);
    }
}

void connection::send_fin() {
    if (filter_ && !filter_->close_notify_sent()) {
        if (!filter_->handshake_done()) return;  // no FIN mid-handshake: filter_in sends it after
        // TLS's half-close first; the FIN follows once it has gone to the kernel.
        if (!send_close_notify() || raw_pending() > 0) return;
    }
    if (::shutdown(fd_.get(), SHUT_WR) != 0) {
        end_by_errno(errno);  // ENOTCONN: the peer is already gone (SO_ERROR says how)
        return;
    }
    end_.fin_sent();
    if (end_.both_done()) settle();
}

// --- What the application asks for. ---

void connection::shutdown_write() {
    if (!fd_ || !end_.want_fin()) return;
    refresh_state();
    if (!output_pending()) send_fin();
}

void connection::close_gracefully(clock::duration timeout, std::uint64_t drain_limit) {
    if (!fd_) return;
    if (filter_ && !filter_->handshake_done()) {
        end_in_handshake();
        return;
    }
    switch (end_.begin_close(clock::now(), timeout, drain_limit)) {
        case end_machine::close_step::out_of_time:
            timeout_fired_ = timeout_kind::close;
            end_with(close_outcome::timed_out, close_method::graceful,
                     make_error_code(errc::timed_out));
            return;
        case end_machine::close_step::unchanged:
            return;
        case end_machine::close_step::tightened:
            // Already closing (e.g. a server stop whose deadline comes before the application's):
            // the timer must move, whatever phase the close is in (draining or the ack wait).
            schedule_timer();
            return;
        case end_machine::close_step::started:
            break;
    }
    refresh_state();
    if (!output_pending() && !end_.fin_was_sent()) {
        send_fin();  // and, if the peer's EOF is in, settle()
        if (!fd_) return;
    } else if (end_.both_done()) {
        settle();  // already waiting for acknowledgements: only the timer moves (below)
        if (!fd_) return;
    }
    reading_changed();  // reading resumes even if paused: the peer's bytes must be drained
    if (fd_) schedule_timer();
}

void connection::abort() {
    end_with(close_outcome::aborted, close_method::abort, make_error_code(errc::aborted));
}

void connection::close() {
    end_released(close_method::close);
}

void connection::on_loop_destroyed() noexcept {
    if (fd_) {
        end_released(close_method::destructor);
    } else if (retired_fd_ && loop_->uring() != nullptr && loop_->uring()->exited()) {
        in_flight_ = 0;  // the ring is gone, and every request with it
        finish_release();
    }
}

void connection::pause_reading() {
    end_.set_user_paused(true, loop_->now());
    reading_changed();
}

void connection::resume_reading() {
    if (!end_.user_paused()) return;
    end_.set_user_paused(false, loop_->now());
    reading_changed();
    schedule_timer();  // the read timeout, off while paused, applies again
}

// --- Ends. ---

void connection::end_with(close_outcome outcome, close_method method, std::error_code ec) {
    release(outcome, method, ec, true, nullptr);
}

void connection::end_by_errno(int err) {
    if (!fd_) return;
    end_facts f = end_.facts();
    // ENOTCONN from shutdown() or send(): the kernel's queued error says what ended it.
    if (err == ENOTCONN) {
        if (auto pending = take_socket_error(fd_.get()); pending && *pending != 0) {
            f.pending_error = *pending;
        } else if (uring_ && recv_armed_) {
            // The multishot recv was woken by the reset and took the error from the socket
            // first; its completion is already in the ring. Judge when it comes (on_recv), so a
            // reset is peer_reset here as on epoll, not "not connected".
            error_in_recv_ = true;
            return;
        }
    }
    const end_verdict v = judge_error(err, f);
    release(v.outcome, end_.method(), v.error, false, nullptr);
}

void connection::end_released(close_method method) {
    if (!fd_) return;
    release(close_outcome::not_open, method, {}, false, nullptr);
}

void connection::end_clean(const tcp_info_snapshot* known_tcp) {
    release(close_outcome::clean, end_.method(), {}, false, known_tcp);
}

// The one exit. `outcome` not_open means "judge the release" (close(), ~loop()): SO_ERROR, the
// queues, our own unsent output and the FINs decide. `clean` is re-checked against the queues
// read here. On io_uring the descriptor stays open (retired_fd_) until the requests in flight
// have completed; what they still move — a send the kernel takes, bytes a recv had read ahead —
// is counted into the report before finish_release() settles it and closes.
void connection::release(close_outcome outcome, close_method method, std::error_code ec,
                         bool abortive, const tcp_info_snapshot* known_tcp) {
    if (!fd_) return;
    const int fd = fd_.get();
    const auto now = clock::now();
    if (timer_ != 0) {
        loop_->cancel(timer_);
        timer_ = 0;
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
        // A Unix socket: SIOCOUTQ is memory the reader has not freed, not bytes owed to it.
        r.unread_bytes = q->unread;
        queues_read = true;
    }
    // io_uring's multishot recv reads ahead: bytes the kernel handed over while reading was
    // paused wait in stash_. Never delivered, they are unread data as much as the kernel's.
    read_ahead_ = static_cast<std::uint32_t>(stash_.size() - stash_head_);
    r.unread_bytes += read_ahead_;
    // What the application wrote and the kernel has not taken is dropped with the buffer (on
    // io_uring a send in flight may still take part of it: on_send subtracts that).
    r.unsent_bytes = buffered_bytes();
    judged_ = outcome == close_outcome::not_open || outcome == close_outcome::clean;
    abortive_ = abortive;
    if (judged_) {
        release_facts_ = end_.facts();
        release_facts_.queues_known = queues_read;
        release_facts_.unacked = info ? r.unacked_bytes : 0;  // Unix: nothing to acknowledge
        // An explicit close must learn of a reset the loop has not processed yet; the clean end
        // after the ack wait already asked SO_ERROR at its last poll (or had nothing to wait for).
        if (outcome == close_outcome::not_open) {
            if (auto pending = take_socket_error(fd); pending)
                release_facts_.pending_error = *pending;
        }
    }
    // shutdown_write() asked for a FIN after output that a send in flight may yet finish.
    fin_wanted_at_release_ = end_.fin_due(true);
    if (uring_) {
        if (in_flight_ > 0) loop_->uring()->cancel_fd(fd);
    } else if (!parked_) {
        loop_->unwatch(fd);  // before close: the number may be reused at once
    }
    parked_ = false;
    interest_ = 0;
    retired_fd_ = std::move(fd_);

    r.outcome = outcome;
    r.method = method;
    r.error = ec;
    r.bytes_sent = bytes_sent_;
    r.bytes_received = bytes_received_;
    r.bytes_drained = end_.drained_bytes();
    r.fin_sent = end_.fin_was_sent();
    r.peer_eof = end_.peer_eof_seen();
    r.close_duration = end_.close_duration(now);
    r.lifetime = now - end_.opened_at();
    r.local = local_;
    r.peer = peer_;
    if (filter_) describe_filter(r);
    std::vector<std::byte>().swap(out_);
    out_head_ = 0;
    std::vector<std::byte>().swap(stash_);
    stash_head_ = 0;
    end_.released();
    refresh_state();
    if (in_flight_ == 0) {
        finish_release();
    } else if (uring_ && loop_->in_loop_thread()) {
        // After run() returned nothing would reap the cancels until the next run() or ~loop():
        // settle now, so that close() releases (FIN or RST) when it is called (review R3).
        (void)loop_->uring()->settle_outside_run([this] { return !retired_fd_; }, 1000);
    }
}

// Completions after the release (io_uring): what they moved belongs in the report.
void connection::count_after_release(detail::uring_op op, int res) noexcept {
    if (!report_ || res <= 0) return;
    const auto n = static_cast<std::uint64_t>(res);
    if (op == detail::uring_op::send) {
        report_->bytes_sent += n;
        report_->unsent_bytes -= std::min(report_->unsent_bytes, n);
    } else if (op == detail::uring_op::recv) {
        report_->unread_bytes += static_cast<std::uint32_t>(n);
        read_ahead_ += static_cast<std::uint32_t>(n);
    }
}

void connection::finish_release() {
    if (!retired_fd_) return;
    close_report& r = *report_;
    const int fd = retired_fd_.get();
    if (judged_) {
        release_facts_.unread = r.unread_bytes;
        release_facts_.unsent = r.unsent_bytes;
        if (fin_wanted_at_release_ && r.unsent_bytes == 0 && r.unread_bytes == 0 &&
            release_facts_.pending_error == 0 && !r.fin_sent) {
            // The output shutdown_write() waited for did go out (a send completed after the
            // release): send the FIN it asked for, as epoll would have inside the call.
            if (::shutdown(fd, SHUT_WR) == 0) {
                r.fin_sent = true;
                release_facts_.fin_sent = true;
            }
        }
        const end_verdict v = judge_release(release_facts_);
        r.outcome = v.outcome;
        r.error = v.error;
    }
    if (filter_) filter_verdict(r);
    // Closing with unread data makes Linux reset the peer; with the data read ahead by us instead
    // of in the kernel's queue, do what it would have done, so both backends look the same on
    // the wire. Dropped output resets too: the peer must not take a cut stream for a whole one.
    if (abortive_ || r.outcome == close_outcome::unsent_data_discarded ||
        (read_ahead_ > 0 && r.outcome == close_outcome::unread_data_discarded)) {
        (void)set_linger(fd, std::chrono::seconds(0));
    } else if (!(r.fin_sent && r.tcp && r.unacked_bytes == 0)) {
        // A positive SO_LINGER (set by the application on the descriptor) would make close()
        // block the loop thread until the output and our FIN are acknowledged or the linger
        // time passes. (Nothing to wait for when our FIN is already acknowledged: no syscall.)
        if (auto l = get_linger(fd); l && *l && **l > std::chrono::seconds(0)) {
            (void)set_linger(fd, std::nullopt);
        }
    }
    retired_fd_.reset();
    loop_->unlink(this);
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
