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

}  // namespace

pump_result pump(stream_socket& s, const pump_options& opts) {
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
    auto send_fin = [&]() -> bool {
        auto r = s.shutdown(shut::write);
        if (!r) {
            fin_error = r.error();
            return false;
        }
        fin_sent = true;
        fin_before_peer_eof = !s.peer_eof_seen();
        return true;
    };

    // `local` failures (stdin, stdout, poll) are ours, not the peer's: exit 1 whatever errno says
    // (EPIPE on stdout must not look like a reset by the peer).
    auto fail_with = [&](std::error_code ec, std::string_view what, bool local = false) {
        out.code = local ? exit_failure : exit_code_for(ec);
        if (out.code == exit_ok || out.code == exit_usage) out.code = exit_failure;
        print_error(fmt::format("{}: {}", what, ec.message()));
        // After a reset there is nothing left to say to the peer: a plain close, whose report
        // names the reset (method `close`, the reset's error), not an abort of our own. After a
        // local failure the peer must learn that this was not an orderly end: RST, not FIN.
        if (ec == make_error_code(errc::peer_reset)) {
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
            } else if (opts.on_stdin_eof == stdin_eof_action::quiet && !s.peer_eof_seen()) {
                quiet_until = deadline::at(std::max(*stdin_done_at, last_received) + opts.quiet);
                if (quiet_until.expired()) {
                    if (!send_fin()) return fail_with(fin_error, "shutdown(write)");
                    fin_wait = deadline::after(opts.close_timeout);
                    quiet_until = deadline::never();
                }
            }
        }
        if (stdin_done && s.peer_eof_seen()) break;
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
        if (!s.peer_eof_seen()) sock_events |= POLLIN;
        if (pending_off < pending.size()) sock_events |= POLLOUT;
        const int sock_slot = static_cast<int>(n);
        fds[n++] = {s.native_handle(), sock_events, 0};

        deadline idle_until = deadline::never();
        if (opts.idle_timeout) idle_until = deadline::at(last_activity + *opts.idle_timeout);
        const deadline wait_until =
            earliest(earliest(opts.until, idle_until), earliest(quiet_until, fin_wait));
        const int rc = ::poll(fds, n, wait_until.poll_timeout_ms());
        if (rc < 0) {
            if (errno == EINTR) {
                continue;  // the loop's top checks for SIGINT/SIGTERM
            }
            return fail_with(errno_code(errno), "poll", true);
        }
        if (rc == 0) {
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

        const short rev = fds[sock_slot].revents;
        if ((rev & POLLOUT) != 0 || ((rev & (POLLERR | POLLHUP)) != 0 && !pending.empty())) {
            if (pending_off < pending.size()) {
                auto sent = s.send(
                    std::string_view(pending.data() + pending_off, pending.size() - pending_off),
                    now_only());
                if (sent) {
                    pending_off += *sent;
                    last_activity = clock::now();
                } else if (sent.error() != make_error_code(errc::timed_out)) {
                    return fail_with(sent.error(), "send");
                }
            }
        }
        if ((rev & (POLLERR | POLLHUP)) != 0 && s.peer_eof_seen() &&
            pending_off >= pending.size()) {
            // Only stdin is of interest now, but the socket died (RST after the peer's FIN);
            // left alone, poll would report it again at once, forever.
            auto err = take_socket_error(s.native_handle());
            const std::error_code ec =
                err && *err != 0 ? errno_code(*err) : make_error_code(errc::connection_closed);
            return fail_with(ec, "connection ended while stdin was still open");
        }
        if ((rev & (POLLIN | POLLERR | POLLHUP)) != 0 && !s.peer_eof_seen()) {
            auto got = s.recv(std::span<char>(buf), now_only());
            if (got) {
                if (*got > 0) {
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
    close_options co;
    co.timeout = opts.close_timeout;
    out.report = s.close_gracefully(co);
    if (!out.report.orderly()) {
        out.code = exit_code_for(out.report.error);
        if (out.code == exit_ok) out.code = exit_failure;
        print_error(fmt::format("connection did not end in order: {}", out.report.to_string()));
    }
    return out;
}

}  // namespace orderly::cli
