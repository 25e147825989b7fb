// connection on the epoll backend: level-triggered readiness, then recv(2)/send(2). It only moves
// bytes and reports what the kernel said; connection.cpp and the end_machine decide the rest.

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

#include "orderly/event/connection.hpp"
#include "orderly/net/socket_options.hpp"
#include "sys.hpp"

namespace orderly {

namespace {

// Reads beyond one full buffer per readiness event are bounded so that one busy peer cannot
// starve the other connections of the loop (level triggering brings us back for the rest).
constexpr int max_reads_per_event = 8;

}  // namespace

void connection::update_interest() {
    if (!fd_) return;
    const std::uint32_t want =
        (end_.wants_read() ? EPOLLIN : 0U) | (raw_pending() > 0 ? EPOLLOUT : 0U);
    if (parked_) {
        // Unwatched (an EPOLLHUP came while reading was paused, or the ack wait): come back only
        // when there is something to do, or epoll would report the hang-up again at once.
        if (want == 0) return;
        if (auto r = loop_->watch(fd_.get(), want, this); !r) {
            end_by_errno(r.error().value());
            return;
        }
        parked_ = false;
        interest_ = want;
        return;
    }
    if (want == interest_) return;  // the common case: no syscall
    if (auto r = loop_->rewatch(fd_.get(), want, this); !r) {
        end_by_errno(r.error().value());
        return;
    }
    interest_ = want;
}

void connection::park() {
    if (parked_ || uring_) return;  // io_uring: nothing is armed once the peer's EOF is in
    loop_->unwatch(fd_.get());
    parked_ = true;
    interest_ = 0;
}

void connection::on_io(std::uint32_t events) {
    if (!fd_) return;  // ended earlier in this batch; the event is stale
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && end_.wants_read()) {
        // With EPOLLHUP the peer's FIN may sit behind the data: read on to EOF or EAGAIN.
        handle_read((events & EPOLLHUP) != 0);
        if (!fd_) return;
    }
    if ((events & EPOLLOUT) != 0 || ((events & (EPOLLERR | EPOLLHUP)) != 0 && raw_pending() > 0)) {
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
        if (!end_.peer_eof_seen() && !end_.wants_read() && !output_pending()) {
            // Reading is paused (before this event or by on_data just now) and the peer's data
            // and FIN may still wait in the socket: they belong to the application, so this is
            // not a reset. epoll reports EPOLLHUP whatever we watch, so stop watching until
            // reading resumes (or close_gracefully() wants the drain) instead of spinning.
            park();
            return;
        }
        // Both directions are down in the kernel (a RST whose error was already consumed):
        // nothing more can move, and level triggering would report it forever.
        if (end_.both_done()) {
            settle();
        } else {
            end_by_errno(ECONNRESET);
        }
    }
}

void connection::handle_read(bool to_eagain) {
    const std::span<std::byte> buf = loop_->read_buffer();
    for (int round = 0; to_eagain || round < max_reads_per_event; ++round) {
        const ssize_t n = detail::sys_recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
            const auto got = static_cast<std::size_t>(n);
            deliver(buf.first(got));
            if (!fd_) return;
            // A short read emptied the socket: go back to epoll instead of paying for EAGAIN.
            if ((got < buf.size() && !to_eagain) || !end_.wants_read()) return;
            continue;
        }
        if (n == 0) {
            peer_eof_read();
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        end_by_errno(errno);
        return;
    }
}

bool connection::flush() {
    while (raw_pending() > 0) {
        const std::size_t want = out_.size() - out_head_;
        const ssize_t n = detail::sys_send(fd_.get(), out_.data() + out_head_, want, MSG_NOSIGNAL);
        if (n > 0) {
            out_head_ += static_cast<std::size_t>(n);
            bytes_sent_ += static_cast<std::size_t>(n);
            end_.write_progress(loop_->now());
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

}  // namespace orderly
