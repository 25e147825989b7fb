// connection's timers: one per connection, at the end machine's next deadline, and the wait
// for the last acknowledgements once both FINs are out (settle). Shared by every backend.

#include "orderly/event/connection.hpp"
#include "orderly/net/socket_options.hpp"
#include "orderly/net/tcp_info.hpp"

namespace orderly {

// --- Timers: one per connection, at the machine's next deadline. ---

// Activity only ever moves deadlines later, so it does not touch the timer: the armed one fires
// early, finds nothing due and re-arms for the real deadline. Only a deadline that moves earlier
// (close_gracefully, output becoming pending, peer EOF, the ack wait) re-arms here.
void connection::schedule_timer() {
    if (!fd_) return;  // ended (perhaps by a callback just now): a timer would outlive us
    if (!end_.may_have_deadline()) return;  // no timeout configured: nothing to compute
    const auto t = end_.next_deadline(output_pending());
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
    if (const auto fired = end_.timeout_due(now, output_pending()); fired != timeout_kind::none) {
        timeout_fired_ = fired;
        end_with(close_outcome::timed_out,
                 end_.is_closing() ? close_method::graceful : close_method::abort,
                 make_error_code(errc::timed_out));
        return;
    }
    if (end_.ack_poll_due(now)) {
        if (auto err = take_socket_error(fd_.get()); err && *err != 0) {
            end_by_errno(*err);  // the peer reset instead of acknowledging
            return;
        }
        auto info = read_tcp_info(fd_.get());
        if (!info || info->send_queue_bytes == 0) {
            end_clean(info ? &*info : nullptr);
            return;
        }
        end_.ack_poll_missed(now);
    }
    if (end_.close_wait_due(now)) {
        end_.close_wait_reported();
        if (callbacks_->on_close_wait) callbacks_->on_close_wait(*this);
        if (!fd_) return;
    }
    schedule_timer();
}

// Both FINs are out. `clean` also promises that the peer's kernel acknowledged every byte we
// sent and our FIN: with a peer that half-closed and stopped reading, the FIN exchange completes
// while megabytes may still sit in our send queue. The kernel has no readiness event for "send
// queue empty", so poll for it (on loopback it is empty at once), unwatched: epoll would report
// the hang-up of both directions at once and forever. The close deadline, the write timeout and
// the lifetime bound the wait. Unix sockets have no acknowledgement to wait for.
void connection::settle() {
    if (end_.in_ack_wait()) return;  // the timer polls
    if (local_.is_ip()) {
        auto info = read_tcp_info(fd_.get());
        if (info && info->send_queue_bytes > 0) {
            park();
            end_.begin_ack_wait(loop_->now());
            schedule_timer();
            return;
        }
        if (info) {
            end_clean(&*info);
            return;
        }
    }
    end_clean(nullptr);
}

}  // namespace orderly
