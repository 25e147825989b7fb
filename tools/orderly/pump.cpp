// The netcat core shared by connect and listen: stdin to the socket, the socket to stdout, with
// half-close done right (stdin's end becomes our FIN; the peer's FIN is not the end of our
// sending).

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "cli.hpp"
#include "orderly/tls/tls_stream.hpp"

namespace orderly::cli {
namespace {

// Blocking write of everything to a descriptor (stdout may be a pipe that is slow to drain).
bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                pollfd p{fd, POLLOUT, 0};
                (void)::poll(&p, 1, -1);
                continue;
            }
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// A deadline that has already passed: the socket calls then try once and never wait, because
// poll(2) below is what waits.
deadline now_only() {
    return deadline::at(clock::now());
}

// The two transports the pump drives, a stream_socket or a tls_stream over one, differ only here.
// The peer's end: its FIN, or over TLS its close_notify (a FIN without it is an error from recv).
bool peer_done(const stream_socket& s) {
    return s.peer_eof_seen();
}
bool peer_done(const tls_stream& t) {
    return t.close_notify_received();
}
int fd_of(const stream_socket& s) {
    return s.native_handle();
}
int fd_of(const tls_stream& t) {
    return t.socket().native_handle();
}
// A plain send tries once (poll waits for room). A TLS record cut short cannot be resumed, so a
// TLS send (at most one 16 KiB record) waits for room, bounded by the idle timeout (else 30 s)
// and the whole-exchange deadline.
deadline send_deadline(const stream_socket& /*unused*/, const pump_options& /*unused*/) {
    return now_only();
}
deadline send_deadline(const tls_stream& /*unused*/, const pump_options& opts) {
    return earliest(opts.until,
                    deadline::after(opts.idle_timeout.value_or(std::chrono::seconds(30))));
}

// Whether a send that timed out may be tried again: not over TLS (the record was cut short).
bool send_retries(const stream_socket& /*unused*/) {
    return true;
}
bool send_retries(const tls_stream& /*unused*/) {
    return false;
}

template <class Stream>
pump_result pump_any(Stream& s, const pump_options& opts) {
    pump_result out;
    bool stdin_open = opts.in_fd >= 0;
    bool fin_sent = false;
    std::vector<char> pending;  // read from stdin, not yet accepted by the socket
    std::size_t pending_off = 0;
    std::vector<char> buf(std::size_t{64} * 1024);
    auto last_activity = clock::now();
    // quiet=DURATION: when stdin's end was seen and when the peer's last byte arrived; our FIN
    // waits until both are DURATION ago. After that FIN the peer has --close-timeout to end.
    std::optional<clock::time_point> stdin_done_at;
    auto last_received = clock::time_point::min();
    deadline fin_wait = deadline::never();
    bool fin_before_peer_eof = false;
    out.hint_quiet = opts.on_stdin_eof == stdin_eof_action::half_close;
    std::error_code fin_error;
    bool read_again = false;
    auto send_fin = [&]() -> bool {
        auto r = s.shutdown(shut::write);
        if (!r) {
            fin_error = r.error();
            return false;
        }
        fin_sent = true;
        fin_before_peer_eof = !peer_done(s);
        return true;
    };

    // `local` failures (stdin, stdout, poll) are ours, not the peer's: exit 1 whatever errno says
    // (EPIPE on stdout must not look like a reset by the peer).
    auto fail_with = [&](std::error_code ec, std::string_view what, bool local = false) {
        out.code = local ? exit_failure : exit_code_for(ec);
        // EPIPE from the socket is the peer's RST seen by a send: say it as the reset it is.
        if (!local && (ec == std::errc::broken_pipe || ec == std::errc::connection_reset)) {
            ec = make_error_code(errc::peer_reset);
        }
        if (out.code == exit_ok || out.code == exit_usage) out.code = exit_failure;
        print_error(fmt::format("{}: {}", what, ec.message()));
        // After a reset there is nothing left to say to the peer: a plain close, whose report
        // names the reset (method `close`, the reset's error), not an abort of our own. After a
        // local failure the peer must learn that this was not an orderly end: RST, not FIN.
        if (ec == make_error_code(errc::tls_truncated)) {
            // TCP ended in order under a TLS stream cut short: end TCP in order too; the report
            // says tls_truncated (the library's judgement, not ours).
            tls_close_options co;
            co.timeout = opts.close_timeout;
            out.report = s.close_gracefully(co);
        } else if (ec == make_error_code(errc::peer_reset)) {  // also after the peer's FIN
            out.report = s.close();
            out.report.outcome = close_outcome::peer_reset;
            if (!out.report.error) out.report.error = ec;
        } else {
            out.report = s.abort();
        }
        return out;
    };

    auto time_out = [&](std::string_view why) {
        out.code = exit_timed_out;
        print_error(why);
        out.report = s.abort();
        out.report.outcome = close_outcome::timed_out;
        out.report.error = make_error_code(errc::timed_out);  // not "aborted": say why
        return out;
    };

    for (;;) {
        if (stop_requested()) {
            return fail_with(make_error_code(std::errc::interrupted), "interrupted", true);
        }
        if (opts.until.expired()) return time_out("deadline passed before both directions ended");
        const bool stdin_done = !stdin_open && pending_off >= pending.size();
        deadline quiet_until = deadline::never();
        if (stdin_done && !fin_sent) {
            if (!stdin_done_at) stdin_done_at = clock::now();
            if (opts.on_stdin_eof == stdin_eof_action::half_close) {
                if (!send_fin()) return fail_with(fin_error, "shutdown(write)");
            } else if (opts.on_stdin_eof == stdin_eof_action::close) {
                out.report = s.close();
                if (out.report.outcome == close_outcome::unread_data_discarded) {
                    // Our close reset the connection: the peer sees an error, we lost bytes.
                    out.code = exit_failure;
                    print_error(fmt::format(
                        "closed with {} B of the reply unread, so the peer got RST "
                        "(--on-stdin-eof close); use half-close or quiet=DURATION to read it",
                        out.report.unread_bytes));
                }
                return out;
            } else if (opts.on_stdin_eof == stdin_eof_action::quiet && !peer_done(s)) {
                quiet_until = deadline::at(std::max(*stdin_done_at, last_received) + opts.quiet);
                if (quiet_until.expired()) {
                    if (!send_fin()) return fail_with(fin_error, "shutdown(write)");
                    fin_wait = deadline::after(opts.close_timeout);
                    quiet_until = deadline::never();
                }
            }
        }
        if (stdin_done && peer_done(s)) break;
        if (fin_wait.expired()) {
            return time_out("the peer did not end within --close-timeout after our FIN");
        }

        pollfd fds[2]{};
        nfds_t n = 0;
        int stdin_slot = -1;
        if (stdin_open && pending_off >= pending.size()) {
            fds[n] = {opts.in_fd, POLLIN, 0};
            stdin_slot = static_cast<int>(n++);
        }
        short sock_events = 0;
        if (!peer_done(s)) sock_events |= POLLIN;
        if (pending_off < pending.size()) sock_events |= POLLOUT;
        const int sock_slot = static_cast<int>(n);
        fds[n++] = {fd_of(s), sock_events, 0};

        deadline idle_until = deadline::never();
        if (opts.idle_timeout) idle_until = deadline::at(last_activity + *opts.idle_timeout);
        const deadline wait_until =
            earliest(earliest(opts.until, idle_until), earliest(quiet_until, fin_wait));
        // After a read that returned data, read again without waiting: a TLS stream may hold
        // decrypted records that poll(2) cannot see (for a plain socket it costs one EAGAIN).
        const int rc = ::poll(fds, n, read_again ? 0 : wait_until.poll_timeout_ms());
        if (rc < 0) {
            if (errno == EINTR) {
                continue;  // the loop's top checks for SIGINT/SIGTERM
            }
            return fail_with(errno_code(errno), "poll", true);
        }
        if (rc == 0 && !read_again) {
            if (idle_until.expired() && !opts.until.expired())
                return time_out("idle timeout: nothing moved in either direction");
            // Early wake-ups by rounding, the quiet time, the FIN wait and the whole-exchange
            // deadline are all handled at the top of the loop.
            continue;
        }

        if (stdin_slot >= 0 && fds[stdin_slot].revents != 0) {
            const ssize_t got = ::read(opts.in_fd, buf.data(), buf.size());
            if (got > 0) {
                pending.assign(buf.begin(), buf.begin() + got);
                pending_off = 0;
                last_activity = clock::now();
            } else if (got == 0) {
                stdin_open = false;
            } else if (errno != EINTR && errno != EAGAIN) {
                return fail_with(errno_code(errno), "reading stdin", true);
            }
        }

        const short rev = static_cast<short>(fds[sock_slot].revents | (read_again ? POLLIN : 0));
        read_again = false;
        if ((rev & POLLOUT) != 0 || ((rev & (POLLERR | POLLHUP)) != 0 && !pending.empty())) {
            if (pending_off < pending.size()) {
                auto sent = s.send(
                    std::string_view(pending.data() + pending_off, pending.size() - pending_off),
                    send_deadline(s, opts));
                if (sent) {
                    pending_off += *sent;
                    last_activity = clock::now();
                } else if (sent.error() != make_error_code(errc::timed_out)) {
                    return fail_with(sent.error(), "send");
                } else if (!send_retries(s)) {
                    return time_out(
                        "send: the peer took no TLS record within --idle-timeout (else 30s)");
                }
            }
        }
        if ((rev & (POLLERR | POLLHUP)) != 0 && peer_done(s) && pending_off >= pending.size()) {
            // Only stdin is of interest now, but the socket died (RST after the peer's FIN);
            // left alone, poll would report it again at once, forever.
            auto err = take_socket_error(fd_of(s));
            const std::error_code ec =
                err && *err != 0 ? errno_code(*err) : make_error_code(errc::connection_closed);
            return fail_with(ec, "connection ended while stdin was still open");
        }
        if ((rev & (POLLIN | POLLERR | POLLHUP)) != 0 && !peer_done(s)) {
            auto got = s.recv(std::span<char>(buf), now_only());
            if (got) {
                if (*got > 0) {
                    read_again = true;
                    last_activity = clock::now();
                    last_received = last_activity;
                    if (opts.out_fd >= 0 && !write_all(opts.out_fd, buf.data(), *got)) {
                        return fail_with(errno_code(errno), "writing stdout", true);
                    }
                }
            } else if (got.error() != make_error_code(errc::timed_out)) {
                return fail_with(got.error(), "recv");
            }
        }
    }

    out.peer_ended_while_half_closed = fin_before_peer_eof;
    // Both directions ended: our FIN (now, for --on-stdin-eof keep) and the peer's are exchanged.
    tls_close_options co;  // a close_options for a stream_socket
    co.timeout = opts.close_timeout;
    out.report = s.close_gracefully(co);
    if (!out.report.orderly()) {
        out.code = exit_code_for(out.report.error);
        if (out.code == exit_ok) out.code = exit_failure;
        print_error(fmt::format("connection did not end in order: {}", out.report.to_string()));
    }
    return out;
}

}  // namespace

pump_result pump(stream_socket& s, const pump_options& opts) {
    return pump_any(s, opts);
}

pump_result pump(tls_stream& s, const pump_options& opts) {
    return pump_any(s, opts);
}

}  // namespace orderly::cli
