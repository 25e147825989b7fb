#pragma once
// stream_socket: a connected TCP or Unix-domain stream socket with deadlines, per-direction state
// and an orderly way to end. The descriptor is O_NONBLOCK and CLOEXEC; "blocking" calls wait with
// poll(2) until their deadline, so any call can be bounded in time (like Python's settimeout()).
// Every send uses MSG_NOSIGNAL: writing to a closed peer returns EPIPE/peer_reset, never SIGPIPE.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "orderly/core/deadline.hpp"
#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/end_rules.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/tcp_info.hpp"

namespace orderly {

// Which direction shutdown() ends.
enum class shut { read, write, both };

struct close_options {
    // How long close_gracefully may wait for the peer's EOF in total before it aborts.
    clock::duration timeout = std::chrono::seconds(5);
    // How many bytes it reads and discards after our FIN before it gives up (drain_limit) and
    // aborts.
    std::uint64_t drain_limit = 1U << 20;
};

// What the destructor does with a socket that is still open. Explicit, per socket. No report
// comes out of a destructor, so close and abort do not collect one (call close() or abort()
// yourself to learn how the connection ended).
enum class destroy_policy {
    close,     // default: plain close(); never blocks (may RST if unread data is queued)
    abort,     // SO_LINGER{1,0}: the peer gets RST at once
    graceful,  // close_gracefully(destroy_close_options()): BLOCKS up to its timeout
};

// Bytes moved by an operation that may stop part-way. It reads like a result<T>: `if (!r)` tests
// for failure and `r.error()` names it; `bytes` is exact whether or not it failed, so a caller
// knows how much of its data went out (or came in) before the error.
class [[nodiscard]] transfer_result {
  public:
    transfer_result() noexcept = default;
    explicit transfer_result(std::size_t n, std::error_code ec = {}) noexcept
        : bytes(n), error_(ec) {}

    std::size_t bytes = 0;  // moved before success or failure

    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return !error_; }
    // Empty on success.
    [[nodiscard]] const std::error_code& error() const noexcept { return error_; }
    void set_error(std::error_code ec) noexcept { error_ = ec; }

  private:
    std::error_code error_;
};

class stream_socket {
  public:
    stream_socket() noexcept = default;  // not open
    // Adopts a connected stream socket (made non-blocking here).
    explicit stream_socket(unique_fd fd) noexcept;
    // The same, remembering the peer's address so that peer_endpoint() and the close report
    // still name it after the connection is gone (getpeername fails with ENOTCONN then).
    stream_socket(unique_fd fd, const endpoint& peer) noexcept;
    stream_socket(stream_socket&&) noexcept;
    stream_socket& operator=(stream_socket&&) noexcept;
    stream_socket(const stream_socket&) = delete;
    stream_socket& operator=(const stream_socket&) = delete;
    // Applies the destroy policy; with the default it never blocks and never throws.
    ~stream_socket();

    // Connects to one endpoint, waiting at most `timeout`. Errors: ECONNREFUSED, ENETUNREACH,
    // errc::timed_out, ENOENT (no such Unix path), ...
    static result<stream_socket> connect(const endpoint& to,
                                         clock::duration timeout = std::chrono::seconds(30));
    // A connected pair of Unix stream sockets (socketpair(2)), for tests and in-process plumbing.
    static result<std::pair<stream_socket, stream_socket>> pair();

    // Sends at least one byte, waiting until the deadline for buffer space. Returns the count.
    // Errors: errc::write_shut after shutdown(write), errc::peer_reset (EPIPE/ECONNRESET),
    // errc::timed_out, errc::not_open.
    result<std::size_t> send(std::span<const std::byte> data, deadline until = deadline::never());
    result<std::size_t> send(std::string_view data, deadline until = deadline::never());
    // Sends all of `data` or stops at the first error; `bytes` says exactly how much went out.
    transfer_result send_all(std::span<const std::byte> data, deadline until = deadline::never());
    transfer_result send_all(std::string_view data, deadline until = deadline::never());

    // Receives up to buf.size() bytes, waiting until the deadline for at least one. Returns 0 at
    // end-of-stream (the peer's FIN, or after shutdown(read)); 0 is never an error. An empty
    // buffer is errc::invalid_argument. Errors: errc::peer_reset, errc::timed_out, errc::not_open.
    result<std::size_t> recv(std::span<std::byte> buf, deadline until = deadline::never());
    result<std::size_t> recv(std::span<char> buf, deadline until = deadline::never());
    // Appends everything until end-of-stream to `out`, at most `limit` bytes (errc::drain_limit
    // when the peer has more: exactly `limit` appended, the rest left unread in the socket).
    // `bytes` counts what was appended.
    transfer_result read_to_end(std::string& out, deadline until = deadline::never(),
                                std::size_t limit = SIZE_MAX);

    // Half-closes. shut::write: FIN after the queued bytes; reading still works.
    // shut::read: later recv() returns 0. Nothing is sent to the peer, and while we have not sent
    // FIN Linux still accepts and acknowledges what the peer sends (and discards it at close with
    // an RST if unread). Once our FIN is out too (shut::both, or shut::write or close_gracefully
    // later), Linux answers any byte the peer still sends with RST: the report then says
    // unread_data_discarded with errc::reset_after_shut_read (our reset, not the peer's). So shut
    // down reading only when the peer is known to be done sending. On a Unix socket our SHUT_RD
    // and the peer's end look the same (recv() says 0 either way), so a close_gracefully() after
    // shut::read there cannot see the peer's end: it reports `closed`, never `clean`, with
    // peer_eof false. Idempotent per direction.
    // Errors: errc::not_open; errc::peer_reset when the peer reset the connection before the call.
    result<void> shutdown(shut how);

    // Releases the descriptor now. Idempotent, never blocks, never throws. The report says what
    // was lost: unread received bytes (the kernel then sent RST: unread_data_discarded) and bytes
    // still unacknowledged. Outcome `clean` only when both FINs had already been exchanged and
    // the peer had acknowledged every byte; with bytes unacknowledged it is `closed` (the kernel
    // keeps sending them; whether they arrive is unknown). A reset the kernel has seen but no
    // call has reported yet is peer_reset.
    close_report close() noexcept;
    // Closes with SO_LINGER{1,0}: queued data is dropped and the peer receives RST.
    close_report abort() noexcept;
    // The orderly end: shutdown(write), read and discard until the peer's EOF (bounded by
    // opts.timeout and opts.drain_limit), wait until the peer acknowledged every byte, then close.
    // Blocks up to opts.timeout. A timeout or an exceeded drain limit aborts the socket and says
    // so in the report; never throws. After shutdown(read) it cannot drain: it discards what is
    // already queued, sends FIN and waits for the peer's FIN; bytes the peer sends after our FIN
    // make Linux reset (unread_data_discarded, errc::reset_after_shut_read).
    close_report close_gracefully(const close_options& opts = {}) noexcept;

    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    [[nodiscard]] bool can_read() const noexcept { return is_open() && !read_shut_ && !peer_eof_; }
    [[nodiscard]] bool can_write() const noexcept { return is_open() && !write_shut_; }
    [[nodiscard]] bool peer_eof_seen() const noexcept { return peer_eof_; }
    [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }
    [[nodiscard]] std::uint64_t bytes_received() const noexcept { return bytes_received_; }

    result<endpoint> local_endpoint() const noexcept;
    // The connected peer; after a reset, the address known from connect()/accept(). Errors:
    // errc::not_open, ENOTCONN when the connection is gone and the peer was never known.
    result<endpoint> peer_endpoint() const noexcept;
    // TCP_INFO + queue sizes (EOPNOTSUPP on Unix sockets).
    result<tcp_info_snapshot> tcp_info() const noexcept;

    void set_destroy_policy(destroy_policy p, close_options opts = {}) noexcept {
        destroy_policy_ = p;
        destroy_opts_ = opts;
    }
    [[nodiscard]] destroy_policy get_destroy_policy() const noexcept { return destroy_policy_; }

    // The descriptor, for socket_options.hpp and poll(2). Still owned by this object.
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    // Gives the descriptor away (e.g. to the event layer); this object becomes not open.
    [[nodiscard]] unique_fd release() noexcept;

  private:
    // Common tail of close(), abort() and close_gracefully(): collect, release, fill the report.
    close_report finish(close_report r, clock::time_point close_started, bool abortive) noexcept;
    // SO_LINGER as `abortive` asks (RST, or never block), then close the descriptor.
    void release_descriptor(bool abortive) noexcept;
    void note_error(int err) noexcept;
    // What the end rules (end_rules.hpp) need; `pending` is SO_ERROR, already taken.
    [[nodiscard]] end_facts facts(int pending) const noexcept;
    // The graceful close's error exit: judged, aborted when it is our own timeout or cap.
    close_report fail_graceful(close_report r, clock::time_point started, int err) noexcept;
    void end_by_policy() noexcept;
    // After read_to_end reached its limit: errc::drain_limit if another byte is there (left
    // unread), nothing at EOF, the error otherwise.
    std::error_code peek_past_limit(deadline until) noexcept;

    unique_fd fd_;
    endpoint peer_;  // as known from connect()/accept(); family none when not known
    clock::time_point opened_ = clock::now();
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;
    int sticky_errno_ = 0;  // first connection-ending errno seen (e.g. ECONNRESET)
    bool read_shut_ = false;
    bool write_shut_ = false;
    bool peer_eof_ = false;
    destroy_policy destroy_policy_ = destroy_policy::close;
    close_options destroy_opts_{};
};

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or the deadline passes. Returns the
// revents; errc::timed_out at the deadline. Retries EINTR.
result<short> wait_ready(int fd, short events, deadline until) noexcept;

}  // namespace orderly
