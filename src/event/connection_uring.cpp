// connection on the io_uring backend: a multishot recv into the loop's provided buffers, and
// sends as SQEs (one in flight per connection, so bytes leave in order), all submitted with the
// loop's one io_uring_enter per iteration. Like the epoll backend it only moves bytes and reports
// what the kernel said; connection.cpp and the end_machine decide the rest.
//
// The traps, as liburing's tests and issues document them:
// - a multishot recv's res == 0 is the peer's FIN: half-closed, still writable, never "over";
//   every res <= 0, and any completion without IORING_CQE_F_MORE, ends the request;
// - -ENOBUFS (the buffer ring ran dry in a burst) ends it too: re-arm, nothing is lost (the
//   bytes wait in the socket);
// - close() with a recv still pending sends no FIN (the request holds the file): cancel every
//   request on the descriptor, wait for their final completions, then close (finish_release).

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "orderly/core/errc.hpp"
#include "orderly/event/connection.hpp"
#include "orderly/net/socket_options.hpp"
#include "uring.hpp"

namespace orderly {

void connection::uring_sync_reading() {
    if (!fd_) return;
    detail::uring_loop& ur = *loop_->uring();
    // Paused: the multishot recv stays armed. Cancelling it here and re-arming it at the resume
    // would cost two SQEs and three CQEs per pause, that is per echoed message for a server that
    // pauses while its reply is in flight (high_water = 0). What arrives meanwhile waits in
    // stash_, undelivered (the report counts it as unread, a release with it resets as the
    // kernel would); once a read buffer's worth waits, on_recv cancels the recv.
    if (!end_.wants_read()) return;
    // What arrived while reading was paused comes first, in order, at most one read buffer's
    // worth per on_data like on epoll (so a resumed reader cannot overshoot its high-water mark
    // by more than that).
    while (stash_head_ < stash_.size()) {
        const std::size_t n = std::min(stash_.size() - stash_head_, loop_->read_buffer().size());
        const auto chunk = std::span<const std::byte>(stash_).subspan(stash_head_, n);
        stash_head_ += n;
        deliver(chunk);
        if (!fd_) return;
        if (stash_head_ == stash_.size()) {
            stash_.clear();
            stash_head_ = 0;
        }
        if (!end_.wants_read()) return;  // paused again by on_data
    }
    if (stash_eof_) {
        stash_eof_ = false;
        peer_eof_read();
        return;
    }
    if (recv_armed_) return;
    hangup_parked_ = false;
    io_uring_sqe* sqe = ur.sqe();
    if (sqe == nullptr) return;  // the ring is full before the loop runs: adopt() fails
    io_uring_prep_recv_multishot(sqe, fd_.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ur.buffer_group();
    sqe->user_data =
        detail::uring_tag(static_cast<detail::uring_target*>(this), detail::uring_op::recv);
    recv_armed_ = true;
    ++in_flight_;
}

[[gnu::always_inline]] inline bool connection::uring_submit_send() {
    io_uring_sqe* sqe = loop_->uring()->sqe();
    if (sqe == nullptr) return false;
    // Not MSG_WAITALL: a send the kernel takes only in part completes with the count, so that
    // bytes_sent and the write timeout see every byte the kernel accepted, as on epoll (with
    // WAITALL a peer that stops reading would leave megabytes taken but uncounted).
    io_uring_prep_send(sqe, fd_.get(), send_ptr_, send_left_, MSG_NOSIGNAL);
    sqe->user_data =
        detail::uring_tag(static_cast<detail::uring_target*>(this), detail::uring_op::send);
    send_in_flight_ = true;
    ++in_flight_;
    return true;
}

// write() on io_uring: queued for the iteration's one submit; an error comes with the completion
// (the connection then ends with it, after this callback).
result<void> connection::uring_write(std::span<const std::byte> data) {
    const bool was_empty = raw_pending() == 0;
    if (!send_in_flight_) {
        // Bytes of the buffer on_data is reading (an echo): sent from there, the buffer kept
        // until the send completes. Anything else is copied, as the caller's memory may change
        // as soon as write() returns.
        held_buf_ = loop_->uring()->try_lend(data);
        if (held_buf_ >= 0) {
            send_ptr_ = data.data();
        } else {
            inflight_.assign(data.begin(), data.end());
            send_ptr_ = inflight_.data();
        }
        send_left_ = data.size();
        if (!uring_submit_send()) {
            uring_end_send();  // nothing went to the kernel: the loan ends here
            return fail(errno_code(EBUSY));
        }
        end_.write_progress(loop_->now());  // the write timeout counts from now
    } else {
        out_.insert(out_.end(), data.begin(), data.end());
    }
    return after_queued(was_empty);
}

void connection::on_completion(detail::uring_op op, int res, std::uint32_t flags) {
    // Open: straight to the handler (tail calls, no frame here). A release inside it closes at
    // once if nothing is in flight any more (each handler counts its request's end first); else
    // a later completion, of a request still in flight, comes through on_completion_slow().
    if (fd_) {
        if (op == detail::uring_op::recv) return on_recv(res, flags);
        if (op == detail::uring_op::send) return on_send(res);
    }
    on_completion_slow(op, res, flags);
}

void connection::on_completion_slow(detail::uring_op op, int res, std::uint32_t flags) {
    if (!fd_) count_after_release(op, res);  // the report counts what still moved
    if (op == detail::uring_op::recv) {
        on_recv(res, flags);
    } else if (op == detail::uring_op::send) {
        on_send(res);
    } else if (op == detail::uring_op::hangup) {
        on_hangup(res);
    }
    // Released, and this was the last request the descriptor waited for.
    if (!fd_ && retired_fd_ && in_flight_ == 0) finish_release();
}

void connection::on_recv(int res, std::uint32_t flags) {
    if ((flags & IORING_CQE_F_MORE) == 0) {
        recv_armed_ = false;
        recv_cancelling_ = false;
        --in_flight_;
    }
    if (res > 0) {
        detail::uring_loop& ur = *loop_->uring();
        const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        const auto data = ur.buffer(id, static_cast<std::size_t>(res));
        bool lent = false;
        if (fd_) {
            if (end_.wants_read() && stash_.empty()) {
                // A guard: an exception out of on_data must not leave the window open.
                struct window {
                    detail::uring_loop& ur;
                    detail::uring_loop::lend_window before;
                    bool& lent;
                    ~window() { lent = ur.lend_close(before); }
                } w{ur, ur.lend_open(id, data.size()), lent};
                deliver(data);
            } else {
                // Paused (or closing after a pause) while the kernel still had a recv armed:
                // keep the bytes for when reading resumes.
                stash_.insert(stash_.end(), data.begin(), data.end());
                if (recv_armed_ && !recv_cancelling_ &&
                    stash_.size() - stash_head_ >= loop_->read_buffer().size()) {
                    ur.cancel(detail::uring_tag(static_cast<detail::uring_target*>(this),
                                                detail::uring_op::recv));
                    recv_cancelling_ = true;  // completions in flight still go to stash_
                }
            }
        }
        if (!lent) ur.recycle(id);       // else the send that took it gives it back
        if (fd_ && recv_armed_) return;  // the common case: the recv goes on
    } else if (res == 0) {
        if (fd_ && error_in_recv_) {
            error_in_recv_ = false;  // an EOF, not the error ENOTCONN promised: judge that
            end_by_errno(ENOTCONN);
        } else if (fd_) {
            if (end_.wants_read() && stash_.empty()) {
                peer_eof_read();
            } else {
                stash_eof_ = true;
            }
        }
        uring_watch_hangup();
        return;
    } else if (res != -ENOBUFS && res != -ECANCELED) {
        if (fd_) end_by_errno(-res);
        return;
    }
    if (fd_ && !recv_armed_ && error_in_recv_) {
        error_in_recv_ = false;  // the recv ended without the error (cancelled): judge as is
        end_by_errno(ENOTCONN);
        return;
    }
    if (fd_ && !recv_armed_) uring_sync_reading();  // re-arm (ENOBUFS, or a resumed pause)
    uring_watch_hangup();
}

// epoll reports EPOLLERR and EPOLLHUP whatever is watched; io_uring reports only what a request
// asks. So while no recv is armed (reading paused, or the peer's EOF read and our FIN not yet
// sent, or our FIN sent while reading is paused), a poll for POLLERR|POLLHUP stands in for it:
// a reset is seen as promptly as on epoll. Not once both FINs are done: POLLHUP is then set for
// good, and the ack wait's own polls read SO_ERROR.
void connection::uring_watch_hangup() {
    if (!fd_ || recv_armed_ || hangup_armed_ || hangup_parked_ || end_.both_done()) return;
    io_uring_sqe* sqe = loop_->uring()->sqe();
    if (sqe == nullptr) return;
    io_uring_prep_poll_add(sqe, fd_.get(), POLLERR | POLLHUP);
    sqe->user_data =
        detail::uring_tag(static_cast<detail::uring_target*>(this), detail::uring_op::hangup);
    hangup_armed_ = true;
    ++in_flight_;
}

void connection::on_hangup(int res) {
    hangup_armed_ = false;
    --in_flight_;
    if (!fd_ || res < 0) return;  // released, or cancelled with it
    const auto events = static_cast<unsigned>(res);
    if ((events & POLLERR) != 0) {
        if (auto err = take_socket_error(fd_.get()); err && *err != 0) {
            end_by_errno(*err);
            return;
        }
    }
    if ((events & POLLHUP) != 0) {
        if (!end_.peer_eof_seen() && !end_.wants_read() && !output_pending()) {
            // As on epoll: reading is paused and the peer's data and FIN may still wait in the
            // socket; they are the application's. The resume reads them (or the error).
            hangup_parked_ = true;
            return;
        }
        if (end_.both_done()) {
            settle();
        } else if (!recv_armed_ && !send_in_flight_) {
            end_by_errno(ECONNRESET);  // both directions down and nothing left to tell us why
        }
        return;
    }
    uring_watch_hangup();
}

// The chunk in flight is done with (sent, failed or dropped): a lent buffer goes back.
void connection::uring_end_send() noexcept {
    if (held_buf_ >= 0) {
        loop_->uring()->give_back(held_buf_);
        held_buf_ = -1;
    } else {
        inflight_.clear();
    }
    send_ptr_ = nullptr;
    send_left_ = 0;
}

void connection::on_send(int res) {
    send_in_flight_ = false;
    --in_flight_;
    if (!fd_) {
        uring_end_send();  // released: nothing more goes out (the report counted this send)
        return;
    }
    if (res < 0) {
        // The report counts what was not sent (release reads send_left_), then the loan ends.
        if (res != -ECANCELED) end_by_errno(-res);
        if (!fd_) {
            uring_end_send();
        } else if (held_buf_ >= 0) {
            // Still open (a cancel not of ours): the bytes stay owed, in memory of our own.
            std::vector<std::byte> rest(send_ptr_, send_ptr_ + send_left_);
            uring_end_send();
            inflight_.swap(rest);
            send_ptr_ = inflight_.data();
            send_left_ = inflight_.size();
        }
        return;
    }
    const auto n = static_cast<std::size_t>(res);
    send_ptr_ += n;
    send_left_ -= n;
    bytes_sent_ += n;
    end_.write_progress(loop_->now());
    if (send_left_ == 0) {
        uring_end_send();
        if (!out_.empty()) {
            inflight_.swap(out_);
            send_ptr_ = inflight_.data();
            send_left_ = inflight_.size();
        }
    }
    if (send_left_ > 0 && !uring_submit_send()) {
        end_by_errno(EBUSY);
        return;
    }
    after_output_progress();
}

}  // namespace orderly
