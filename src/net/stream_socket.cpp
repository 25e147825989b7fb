#include "orderly/net/stream_socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/net/detail/transfer_loops.hpp"
#include "orderly/net/socket_options.hpp"

namespace orderly {
namespace {

// Has the peer's FIN arrived? Only TCP can tell without reading (its state); a Unix socket
// cannot: after our own SHUT_RD its recv() says 0 whether or not the peer shut down writing.
std::optional<bool> peer_fin_received(int fd) noexcept {
    auto ti = read_tcp_info(fd);
    if (!ti) return std::nullopt;
    return ti->state != tcp_state::established && ti->state != tcp_state::fin_wait1 &&
           ti->state != tcp_state::fin_wait2;
}

// Errors that mean "the peer reset the connection" are reported as errc::peer_reset so callers
// need not know that Linux says EPIPE for a write after the peer's RST was processed.
std::error_code map_io_error(int err) noexcept {
    return is_reset_errno(err) ? make_error_code(errc::peer_reset) : errno_code(err);
}

// The blocking layer's reports use the same convention as its calls.
std::error_code report_error(const std::error_code& ec) noexcept {
    if (ec.category() == std::system_category() && is_reset_errno(ec.value())) {
        return make_error_code(errc::peer_reset);
    }
    return ec;
}

void make_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) (void)::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

result<short> wait_ready(int fd, short events, deadline until) noexcept {
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, until.poll_timeout_ms());
        if (n > 0) return p.revents;
        if (n == 0) {
            if (until.expired()) return fail(make_error_code(errc::timed_out));
            continue;  // woke a little early (ms rounding); wait for the rest
        }
        if (errno != EINTR) return fail(errno_code(errno));
    }
}

stream_socket::stream_socket(unique_fd fd) noexcept : fd_(std::move(fd)) {
    if (fd_.valid()) make_nonblocking(fd_.get());
}

stream_socket::stream_socket(unique_fd fd, const endpoint& peer) noexcept
    : stream_socket(std::move(fd)) {
    peer_ = peer;
}

stream_socket::stream_socket(stream_socket&& o) noexcept
    : fd_(std::move(o.fd_)),
      peer_(o.peer_),
      opened_(o.opened_),
      bytes_sent_(o.bytes_sent_),
      bytes_received_(o.bytes_received_),
      sticky_errno_(o.sticky_errno_),
      read_shut_(o.read_shut_),
      write_shut_(o.write_shut_),
      peer_eof_(o.peer_eof_),
      destroy_policy_(o.destroy_policy_),
      destroy_opts_(o.destroy_opts_) {}

stream_socket& stream_socket::operator=(stream_socket&& o) noexcept {
    if (this != &o) {
        end_by_policy();  // the socket being replaced ends the way its own policy says
        fd_ = std::move(o.fd_);
        peer_ = o.peer_;
        opened_ = o.opened_;
        bytes_sent_ = o.bytes_sent_;
        bytes_received_ = o.bytes_received_;
        sticky_errno_ = o.sticky_errno_;
        read_shut_ = o.read_shut_;
        write_shut_ = o.write_shut_;
        peer_eof_ = o.peer_eof_;
        destroy_policy_ = o.destroy_policy_;
        destroy_opts_ = o.destroy_opts_;
    }
    return *this;
}

stream_socket::~stream_socket() {
    end_by_policy();
}

// Nobody can read the report of a socket being destroyed, so close and abort skip collecting it
// (endpoints, TCP_INFO, SO_ERROR: about half the cost of a close, see docs/benchmarks.md) and
// only release. The graceful policy's cost is the drain, not the report.
void stream_socket::end_by_policy() noexcept {
    if (!fd_.valid()) return;
    switch (destroy_policy_) {
        case destroy_policy::close:
            release_descriptor(false);
            break;
        case destroy_policy::abort:
            release_descriptor(true);
            break;
        case destroy_policy::graceful:
            (void)close_gracefully(destroy_opts_);
            break;
    }
}

result<stream_socket> stream_socket::connect(const endpoint& to, clock::duration timeout) {
    if (to.family() == address_family::none) {
        return fail(make_error_code(errc::invalid_argument));
    }
    const deadline until = deadline::after(timeout);
    unique_fd fd(::socket(to.domain(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return fail(errno_code(errno));
    if (::connect(fd.get(), to.data(), to.size()) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) return fail(errno_code(errno));
        auto ready = wait_ready(fd.get(), POLLOUT, until);
        if (!ready) return fail(ready.error());
        auto err = take_socket_error(fd.get());
        if (!err) return fail(err.error());
        if (*err != 0) return fail(errno_code(*err));
    }
    return stream_socket(std::move(fd), to);
}

result<std::pair<stream_socket, stream_socket>> stream_socket::pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        return fail(errno_code(errno));
    }
    return std::pair<stream_socket, stream_socket>(stream_socket(unique_fd(fds[0])),
                                                   stream_socket(unique_fd(fds[1])));
}

void stream_socket::note_error(int err) noexcept {
    if (sticky_errno_ == 0) sticky_errno_ = err;
}

result<std::size_t> stream_socket::send(std::span<const std::byte> data, deadline until) {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    if (write_shut_) return fail(make_error_code(errc::write_shut));
    if (data.empty()) return std::size_t{0};
    for (;;) {
        const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            bytes_sent_ += static_cast<std::uint64_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            const int err = errno;
            const auto ec = map_io_error(err);
            note_error(err);
            return fail(ec);
        }
        auto ready = wait_ready(fd_.get(), POLLOUT, until);
        if (!ready) return fail(ready.error());
    }
}

result<std::size_t> stream_socket::send(std::string_view data, deadline until) {
    return send(std::as_bytes(std::span(data.data(), data.size())), until);
}

transfer_result stream_socket::send_all(std::span<const std::byte> data, deadline until) {
    return detail::send_all_loop(*this, data, until);
}

transfer_result stream_socket::send_all(std::string_view data, deadline until) {
    return send_all(std::as_bytes(std::span(data.data(), data.size())), until);
}

result<std::size_t> stream_socket::recv(std::span<std::byte> buf, deadline until) {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    if (buf.empty()) return fail(make_error_code(errc::invalid_argument));
    // After shutdown(read) or the peer's FIN, end-of-stream is the answer; Linux would still hand
    // out bytes that arrive after SHUT_RD, which would contradict what the caller asked for.
    if (read_shut_ || peer_eof_) return std::size_t{0};
    for (;;) {
        const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
            bytes_received_ += static_cast<std::uint64_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (n == 0) {
            // A reset that shutdown() took from SO_ERROR is no longer there to make recv fail;
            // the 0 that follows it is not the peer's FIN.
            if (is_reset_errno(sticky_errno_)) return fail(map_io_error(sticky_errno_));
            peer_eof_ = true;
            return std::size_t{0};
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            const int err = errno;
            const auto ec = map_io_error(err);
            note_error(err);
            return fail(ec);
        }
        auto ready = wait_ready(fd_.get(), POLLIN, until);
        if (!ready) return fail(ready.error());
    }
}

result<std::size_t> stream_socket::recv(std::span<char> buf, deadline until) {
    return recv(std::as_writable_bytes(buf), until);
}

transfer_result stream_socket::read_to_end(std::string& out, deadline until, std::size_t limit) {
    transfer_result r;
    // Only an actual extra byte proves the limit was exceeded (a stream of exactly `limit` bytes
    // then EOF is fine); peek at it so it stays in the socket for the caller.
    if (detail::read_up_to(*this, out, until, limit, r)) r.set_error(peek_past_limit(until));
    return r;
}

std::error_code stream_socket::peek_past_limit(deadline until) noexcept {
    if (read_shut_ || peer_eof_) return {};
    for (;;) {
        std::byte probe[1];
        const ssize_t n = ::recv(fd_.get(), probe, sizeof probe, MSG_PEEK);
        if (n > 0) return make_error_code(errc::drain_limit);
        if (n == 0) {
            if (is_reset_errno(sticky_errno_)) return map_io_error(sticky_errno_);
            peer_eof_ = true;
            return {};
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            const int err = errno;
            const auto ec = map_io_error(err);
            note_error(err);
            return ec;
        }
        auto ready = wait_ready(fd_.get(), POLLIN, until);
        if (!ready) return ready.error();
    }
}

result<void> stream_socket::shutdown(shut how) {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    const bool rd = how != shut::write && !read_shut_;
    const bool wr = how != shut::read && !write_shut_;
    if (!rd && !wr) return {};
    const int arg = rd && wr ? SHUT_RDWR : (rd ? SHUT_RD : SHUT_WR);
    if (::shutdown(fd_.get(), arg) != 0) {
        int err = errno;
        // ENOTCONN after the peer reset us: report the reset rather than a confusing ENOTCONN,
        // whether an earlier call saw it or the kernel still holds it in SO_ERROR.
        if (err == ENOTCONN) {
            if (auto pending = take_socket_error(fd_.get()); pending && *pending != 0) {
                note_error(*pending);
            }
            if (sticky_errno_ != 0) err = sticky_errno_;
        }
        return fail(map_io_error(err));
    }
    if (rd) read_shut_ = true;
    if (wr) write_shut_ = true;
    return {};
}

result<endpoint> stream_socket::local_endpoint() const noexcept {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    return local_endpoint_of(fd_.get());
}

result<endpoint> stream_socket::peer_endpoint() const noexcept {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    auto ep = peer_endpoint_of(fd_.get());
    if (!ep && peer_.family() != address_family::none) return peer_;
    return ep;
}

result<tcp_info_snapshot> stream_socket::tcp_info() const noexcept {
    if (!fd_.valid()) return fail(make_error_code(errc::not_open));
    return read_tcp_info(fd_.get());
}

unique_fd stream_socket::release() noexcept {
    unique_fd fd = std::move(fd_);
    read_shut_ = write_shut_ = peer_eof_ = false;
    return fd;
}

void stream_socket::release_descriptor(bool abortive) noexcept {
    const int fd = fd_.get();
    if (abortive) {
        (void)set_linger(fd, std::chrono::seconds(0));
    } else if (auto l = get_linger(fd); l && *l && **l > std::chrono::seconds(0)) {
        // A positive SO_LINGER set by the application makes Linux's close() wait for unsent
        // data even on a non-blocking socket: close() would block, close_gracefully() overrun
        // its deadline. Turn it off; the kernel still delivers in the background, and the
        // report's unacked_bytes says what was still owed.
        (void)set_linger(fd, std::nullopt);
    }
    (void)fd_.close();
    read_shut_ = write_shut_ = true;
}

end_facts stream_socket::facts(int pending) const noexcept {
    end_facts f;
    f.fin_sent = write_shut_;
    f.peer_eof = peer_eof_;
    f.read_shut = read_shut_;
    f.pending_error = sticky_errno_ != 0 ? sticky_errno_ : pending;
    return f;
}

close_report stream_socket::finish(close_report r, clock::time_point close_started,
                                   bool abortive) noexcept {
    const int fd = fd_.get();
    r.bytes_sent = bytes_sent_;
    r.bytes_received = bytes_received_;
    r.fin_sent = write_shut_;
    r.peer_eof = peer_eof_;
    if (auto ep = local_endpoint()) r.local = *ep;
    if (peer_.family() != address_family::none) {
        r.peer = peer_;  // remembered from connect/accept: no getpeername
    } else if (auto ep = peer_endpoint()) {
        r.peer = *ep;
    }
    bool queues_known = false;
    if (auto ti = read_tcp_info(fd)) {
        r.tcp = *ti;
        r.unacked_bytes = ti->send_queue_bytes;
        r.unread_bytes = ti->recv_queue_bytes;
        queues_known = true;
    } else if (auto q = read_queue_sizes(fd)) {
        // A Unix socket's SIOCOUTQ counts memory the reader has not freed, not bytes owed: its
        // bytes are in the peer's queue once sent, so nothing is unacknowledged.
        r.unread_bytes = q->unread;
        queues_known = true;
    }
    // An error the kernel has queued but nobody has read yet (e.g. an RST that arrived while we
    // were idle) still tells how the connection ended.
    int pending = 0;
    if (auto e = take_socket_error(fd); e) pending = *e;
    end_facts f = facts(pending);  // before the release marks both directions shut
    f.queues_known = queues_known;
    f.unread = r.unread_bytes;
    // A Unix socket's bytes are in the peer's queue once sent: nothing to acknowledge.
    f.unacked = r.tcp ? r.unacked_bytes : 0;
    release_descriptor(abortive);

    if (r.outcome == close_outcome::not_open) {
        // Not decided by the caller (close(), or a graceful close that got to the end): judge.
        const end_verdict v = judge_release(f);
        r.outcome = v.outcome;
        r.error = report_error(v.error);
    }
    const auto now = clock::now();
    r.close_duration = now - close_started;
    r.lifetime = now - opened_;
    return r;
}

close_report stream_socket::fail_graceful(close_report r, clock::time_point started,
                                          int err) noexcept {
    int pending = 0;
    if (err == ENOTCONN) {
        if (auto e = take_socket_error(fd_.get()); e) pending = *e;
    }
    const end_verdict v = judge_error(err, facts(pending));
    r.outcome = v.outcome;
    r.error = report_error(v.error);
    return finish(r, started, false);
}

close_report stream_socket::close() noexcept {
    if (!fd_.valid()) return {};
    return finish(close_report{}, clock::now(), false);
}

close_report stream_socket::abort() noexcept {
    if (!fd_.valid()) return {};
    close_report r;
    r.method = close_method::abort;
    r.outcome = close_outcome::aborted;
    r.error = make_error_code(errc::aborted);
    return finish(r, clock::now(), true);
}

close_report stream_socket::close_gracefully(const close_options& opts) noexcept {
    if (!fd_.valid()) {
        close_report r;
        r.method = close_method::graceful;
        return r;
    }
    const auto started = clock::now();
    const deadline until = deadline::at(started + opts.timeout);
    close_report r;
    r.method = close_method::graceful;

    // Waits a little for a change no readiness event reports (the peer's FIN after our own
    // SHUT_RD, the last acknowledgements); false once the deadline has passed.
    auto nap = [&until] {
        if (until.expired()) return false;
        std::this_thread::sleep_for(
            std::min<clock::duration>(std::chrono::milliseconds(2), until.remaining()));
        return true;
    };
    // Our own bounds: the socket is aborted (RST) and the report says which bound it was.
    auto bounded = [&](close_outcome o, errc why) {
        r.outcome = o;
        r.error = make_error_code(why);
        return finish(r, started, true);
    };
    char scratch[16384];
    // Discards what is queued now, without waiting; false on an error (in `err`) or past the cap.
    auto discard_queued = [&](int& err) {
        for (;;) {
            const ssize_t n = ::recv(fd_.get(), scratch, sizeof scratch, 0);
            if (n > 0) {
                r.bytes_drained += static_cast<std::uint64_t>(n);
                if (r.bytes_drained > opts.drain_limit) return false;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
            return n <= 0 && err == 0;
        }
    };

    if (sticky_errno_ != 0) return fail_graceful(r, started, sticky_errno_);
    if (read_shut_ && !write_shut_ && !peer_eof_) {
        // Once our FIN is out, Linux resets on every byte that arrives after SHUT_RD; the bytes
        // already queued can still go quietly.
        int err = 0;
        if (!discard_queued(err)) {
            if (err != 0) return fail_graceful(r, started, err);
            return bounded(close_outcome::drain_limit, errc::drain_limit);
        }
    }
    if (!write_shut_) {
        if (::shutdown(fd_.get(), SHUT_WR) != 0) return fail_graceful(r, started, errno);
        write_shut_ = true;
    }
    // Drain: read and discard until the peer's EOF. Reading also what the application never read
    // matters: closing with unread bytes would make Linux answer with RST.
    while (!peer_eof_) {
        const ssize_t n = ::recv(fd_.get(), scratch, sizeof scratch, 0);
        if (n > 0) {
            r.bytes_drained += static_cast<std::uint64_t>(n);
            if (r.bytes_drained > opts.drain_limit) {
                return bounded(close_outcome::drain_limit, errc::drain_limit);
            }
            // A peer that always has more data never lets recv() say EAGAIN: check here too.
            if (until.expired()) return bounded(close_outcome::timed_out, errc::timed_out);
            continue;
        }
        if (n == 0) {
            if (read_shut_) {
                // After our own SHUT_RD, recv() returns 0 without the peer's FIN, and poll()
                // reports the socket readable for good: wait for the FIN by watching the state.
                const auto fin = peer_fin_received(fd_.get());
                if (!fin) break;  // a Unix socket: the peer's end cannot be seen; not `clean`
                if (!*fin) {
                    if (!nap()) return bounded(close_outcome::timed_out, errc::timed_out);
                    continue;
                }
            }
            peer_eof_ = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_graceful(r, started, errno);
        auto ready = wait_ready(fd_.get(), POLLIN, until);
        if (!ready) {
            if (ready.error() == errc::timed_out) {
                return bounded(close_outcome::timed_out, errc::timed_out);
            }
            return fail_graceful(r, started, ready.error().value());
        }
    }
    // `clean` also promises that the peer's kernel acknowledged all we sent and our FIN: a peer
    // that half-closed and stopped reading completes the FIN exchange while our send queue may
    // still hold megabytes. No readiness event says "send queue empty", so poll for it (on
    // loopback it is empty at once). Unix sockets have no acknowledgement to wait for.
    // read_tcp_info fails for a Unix socket, as in the event layer.
    for (;;) {
        auto ti = read_tcp_info(fd_.get());
        if (!ti || ti->send_queue_bytes == 0) break;
        if (auto pending = take_socket_error(fd_.get()); pending && *pending != 0) {
            return fail_graceful(r, started, *pending);
        }
        if (!nap()) return bounded(close_outcome::timed_out, errc::timed_out);
    }
    // The end rules decide (a reset our kernel sent after SHUT_RD shows in SO_ERROR here).
    return finish(r, started, false);
}

}  // namespace orderly
