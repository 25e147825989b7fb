#pragma once
// connection: one non-blocking stream socket served by a loop. Reads are handed to on_data straight
// from the loop's buffer; writes go to the kernel at once and only what it does not take is
// buffered. The peer's FIN makes the connection half-closed, never over: it stays writable until
// the application says otherwise. on_closed runs exactly once, whatever ends the connection.
//
// Threading: every member function must be called on the connection's loop thread (from a callback
// or through get_loop().post()), or on any one thread once loop::run() has returned. Ownership: the
// connection keeps itself alive while its descriptor is open and until on_closed has returned;
// hold the connection_ptr only to reach it later. A connection ended while the loop is not
// running gets its on_closed at the next run() or in ~loop(); its descriptor is released (FIN or
// RST) at the call on both backends (on io_uring when called on the thread that ran the loop;
// from another thread the release waits for ~loop()). A loop destroyed with connections still
// open releases each (plain close, method `destructor`) and calls its on_closed once.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/event/end_machine.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/stream_filter.hpp"
#include "orderly/net/stream_socket.hpp"
#include "orderly/net/tcp_info.hpp"

namespace orderly {

class connection;
class connection_registry;
using connection_ptr = std::shared_ptr<connection>;

struct connection_options {
    // Backpressure: on_backpressure(true) when buffered output rises above high_water, (false)
    // when it falls back to low_water.
    std::size_t high_water = 1U << 20;
    std::size_t low_water = 64U << 10;
    // Stop reading while above high_water (resume at low_water). Keeps a request/response server's
    // memory bounded by high_water plus one read when a client sends but does not read.
    bool pause_reading_on_backpressure = true;
    // Zero disables a timeout. idle, read and write are inactivity timeouts: a single byte
    // pushes them back, so a peer that trickles (a slowloris) is never ended by them.
    clock::duration idle_timeout{0};
    clock::duration read_timeout{0};
    clock::duration write_timeout{0};
    // A hard cap counted from adopt(), pushed back by nothing: the connection is aborted once it
    // has been open this long, even in the middle of close_gracefully(). The bound for a peer
    // that trickles, and for one-request connections that must not outlive their budget.
    clock::duration lifetime_timeout{0};
    // CLOSE_WAIT detector: on_close_wait fires once if the peer's FIN was read this long ago and
    // the application has neither shut down writing nor closed.
    clock::duration close_wait_after{0};
    bool nodelay = true;  // TCP_NODELAY on TCP sockets
    // With a filter (TLS): the handshake must finish this long after adopt(), or the connection
    // is aborted with timed_out and timeout_fired() == timeout_kind::handshake. Zero disables.
    clock::duration handshake_timeout = std::chrono::seconds(10);
    // With a filter (TLS), once our close_notify went (shutdown_write, close_gracefully, a
    // server's stop_gracefully): true waits for the peer's close_notify, and a FIN without it
    // ends tls_truncated. false: a FIN without it ends the connection `closed` (never `clean`;
    // report.tls->wait is not_waited), for peers that never answer close_notify. As
    // tls_close_options::wait_for_peer_close_notify in the blocking layer.
    bool wait_for_peer_close_notify = true;
};

// Shared by every connection of a server (one allocation, not one per connection). All optional.
// Callbacks run on the loop thread; they may call any member of the connection.
struct connection_callbacks {
    // At adopt() for plain TCP; with a filter (TLS) once the handshake is done (the peer is
    // authenticated, ALPN is known: see filter()). A connection whose handshake fails never gets
    // on_open, only on_closed (tls_error, timed_out, peer_reset ...).
    std::function<void(connection&)> on_open;
    // `data` lives in the loop's read buffer: valid only during the call. Not called after
    // close_gracefully() (what arrives then is drained and counted).
    std::function<void(connection&, std::span<const std::byte> data)> on_data;
    // The peer sent FIN. The connection stays open and writable; call shutdown_write() (or
    // close_gracefully()) when done, or the CLOSE_WAIT detector will report it.
    std::function<void(connection&)> on_peer_eof;
    // Buffered output crossed high_water (true) or fell back to low_water (false). May run inside
    // write().
    std::function<void(connection&, bool above_high_water)> on_backpressure;
    // Everything write() had to buffer has now gone to the kernel (not called when write() sent
    // it all at once: check buffered_bytes() after write()). For streaming a large body in
    // chunks, and for closing only once the output is out.
    std::function<void(connection&)> on_drained;
    std::function<void(connection&)> on_close_wait;
    // Exactly once, after the descriptor was released; the connection is destroyed after it
    // returns (unless the application still holds a connection_ptr).
    std::function<void(connection&, const close_report&)> on_closed;
};

class connection final : public std::enable_shared_from_this<connection>,
                         private io_handler,
                         private detail::uring_target,
                         private loop_resource {
    struct private_tag {};

  public:
    // Takes a connected stream socket, makes it non-blocking and starts reading; on_open runs
    // before adopt returns (with a filter: once the handshake is done). Call on lp's thread.
    // Errors: the errno of fcntl or epoll_ctl (the descriptor is then closed, on_closed is not
    // called). `peer` and `local`, when the caller knows them (accept's address, a listener bound
    // to a specific address), and `nonblocking` (accept4 with SOCK_NONBLOCK) save a syscall each.
    static result<connection_ptr> adopt(loop& lp, unique_fd fd,
                                        std::shared_ptr<const connection_callbacks> callbacks,
                                        const connection_options& opts = {},
                                        connection_registry* registry = nullptr,
                                        const endpoint* peer = nullptr,
                                        const endpoint* local = nullptr, bool nonblocking = false);

    // The same over a filter (TLS: orderly::tls_filter): on_data gets plaintext, on_peer_eof
    // means the peer's close_notify, a FIN without it ends with tls_truncated, shutdown_write()
    // sends close_notify then FIN. on_open runs once the handshake is done; what is written
    // before it (by the caller of adopt) is held and sent after it. close_gracefully() during the
    // handshake aborts (there is no TLS end to send yet). See docs/event.md, "TLS".
    static result<connection_ptr> adopt(loop& lp, unique_fd fd,
                                        std::unique_ptr<stream_filter> filter,
                                        std::shared_ptr<const connection_callbacks> callbacks,
                                        const connection_options& opts = {},
                                        connection_registry* registry = nullptr,
                                        const endpoint* peer = nullptr,
                                        const endpoint* local = nullptr, bool nonblocking = false);

    connection(private_tag, loop& lp, unique_fd fd,
               std::shared_ptr<const connection_callbacks> callbacks,
               const connection_options& opts, connection_registry* registry);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Never blocks: sends what the kernel accepts now and buffers the rest (no allocation when
    // the kernel takes it all). Errors: errc::write_shut after shutdown_write()/close_gracefully(),
    // errc::connection_closed after the end, errc::peer_reset (the connection then ends with that
    // outcome; on_closed follows after the current callback).
    result<void> write(std::span<const std::byte> data);
    result<void> write(std::string_view data) { return write(std::as_bytes(std::span(data))); }

    // Half-close: FIN once the buffered output is sent; reading continues. When the peer's EOF has
    // been (or is later) read too, the connection ends `clean`. Idempotent.
    void shutdown_write();
    // The orderly end: stop delivering data, flush, FIN, read and discard until the peer's EOF,
    // then release. Bounded by `timeout` (outcome timed_out) and by `drain_limit` discarded bytes
    // (outcome drain_limit); both abort with RST. Never blocks. Calling it again only tightens
    // the bounds (the earlier deadline, the smaller limit wins).
    void close_gracefully(clock::duration timeout, std::uint64_t drain_limit = 1U << 20);
    // The same, bounded by an absolute deadline (a server's stop deadline shared by many).
    void close_gracefully(deadline until, std::uint64_t drain_limit = 1U << 20) {
        close_gracefully(std::min<clock::duration>(until.remaining(), std::chrono::hours(24)),
                         drain_limit);
    }
    void close_gracefully(const close_options& opts) {
        close_gracefully(opts.timeout, opts.drain_limit);
    }
    // SO_LINGER{1,0} and release: buffered output is dropped and the peer gets RST.
    void abort();
    // Release now. Buffered output (buffered_bytes() the kernel has not taken) is dropped and
    // the peer gets RST, so it cannot mistake the cut stream for a whole one: the report says
    // unsent_data_discarded and counts unsent_bytes. Unread received bytes make Linux send RST
    // (the report then says unread_data_discarded). `clean` only if both FINs went and the peer had
    // acknowledged every byte; with bytes unacknowledged the outcome is `closed` (the kernel
    // keeps sending them, their arrival is unknown). A reset the loop has not processed yet is
    // reported as peer_reset, here and in shutdown_write() and close_gracefully().
    void close();

    // Stop / restart watching for input (flow control in the other direction).
    void pause_reading();
    void resume_reading();

    [[nodiscard]] connection_state state() const noexcept { return end_.current_state(); }
    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    [[nodiscard]] bool peer_eof_seen() const noexcept { return end_.peer_eof_seen(); }
    // Over TLS: plaintext waiting for the handshake plus ciphertext waiting for the kernel.
    [[nodiscard]] std::size_t buffered_bytes() const noexcept {
        return raw_pending() + (filter_ ? filter_->plaintext_buffered() : 0);
    }
    // The backend this connection's loop uses (its bytes move the same way on both).
    [[nodiscard]] loop_backend backend() const noexcept {
        return uring_ ? loop_backend::io_uring : loop_backend::epoll;
    }
    [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }
    [[nodiscard]] std::uint64_t bytes_received() const noexcept { return bytes_received_; }
    [[nodiscard]] timeout_kind timeout_fired() const noexcept { return timeout_fired_; }
    [[nodiscard]] const endpoint& local_endpoint() const noexcept { return local_; }
    [[nodiscard]] const endpoint& peer_endpoint() const noexcept { return peer_; }
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
    // When the state last changed (for the registry and the CLOSE_WAIT detector).
    [[nodiscard]] clock::time_point state_since() const noexcept { return end_.state_since(); }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    [[nodiscard]] loop& get_loop() const noexcept { return *loop_; }
    // The filter (TLS) under this connection, null for plain TCP: e.g. handshake_done(), and
    // describe() for the version, cipher and ALPN (in on_open).
    [[nodiscard]] const stream_filter* filter() const noexcept { return filter_.get(); }

    // Application state attached to the connection (e.g. a parser).
    void set_context(std::shared_ptr<void> ctx) noexcept { context_ = std::move(ctx); }
    [[nodiscard]] const std::shared_ptr<void>& context() const noexcept { return context_; }

  private:
    friend class connection_registry;

    // --- Shared by every backend (connection.cpp): the orderly end and the application. ---
    void deliver(std::span<const std::byte> data);  // bytes read from the peer
    void peer_eof_read();                           // the peer's FIN
    void after_output_progress();                   // bytes went to the kernel
    result<void> after_queued(bool was_empty);      // bytes wait in our buffers
    void send_fin();
    void settle();  // both FINs went: wait for the last acknowledgements, then `clean`
    void refresh_state();
    void schedule_timer();
    void on_timer();
    void reading_changed();  // wants_read() may have changed: tell the backend
    // Ends: our own bound (timeouts, drain cap, abort); an errno the kernel returned; a release
    // asked for (close(), ~loop()); the clean end after the ack wait.
    void end_with(close_outcome outcome, close_method method, std::error_code ec);
    void end_by_errno(int err);
    void end_released(close_method method);
    void end_clean(const tcp_info_snapshot* known_tcp);
    void release(close_outcome outcome, close_method method, std::error_code ec, bool abortive,
                 const tcp_info_snapshot* known_tcp);
    void on_loop_destroyed() noexcept override;
    // The descriptor is closed and on_closed queued: at once, or on io_uring once every request
    // in flight has completed (a close() with a recv pending would send no FIN: liburing #932).
    void finish_release();
    void count_after_release(detail::uring_op op, int res) noexcept;
    [[nodiscard]] bool output_pending() const noexcept { return buffered_bytes() > 0; }
    // Bytes for the kernel (over TLS: ciphertext), in out_ and the io_uring send in flight.
    [[nodiscard]] std::size_t raw_pending() const noexcept {
        return out_.size() - out_head_ + send_left_;
    }
    void deliver_plain(std::span<const std::byte> data);
    void peer_end();  // the peer's end of sending: its FIN, or over TLS its close_notify
    result<void> write_raw(std::span<const std::byte> data);

    // --- A filter (connection_filter.cpp): TLS records in and out. ---
    void filter_in(std::span<const std::byte> ciphertext);
    void pump_plaintext();
    bool send_ciphertext();
    bool send_close_notify();
    result<void> write_filtered(std::span<const std::byte> data);
    void filter_tcp_eof();
    void end_filter_failure();
    void end_in_handshake();          // close_gracefully() before the handshake finished
    void filter_tcp_eof_unawaited();  // a FIN after our close_notify, without the peer's
    void describe_filter(close_report& r) const;
    void filter_verdict(close_report& r) const;  // `clean` over TLS needs both alerts too
    void sync_transport();  // the backend's side of wants_read()/output after a change

    // --- The epoll backend (connection_epoll.cpp): readiness, then recv/send. ---
    void on_io(std::uint32_t events) override;
    void handle_read(bool to_eagain);
    bool flush();
    void update_interest();
    void park();

    // --- The io_uring backend (connection_uring.cpp): completions. ---
    void on_completion(detail::uring_op op, int res, std::uint32_t flags) override;
    [[gnu::noinline]] void on_completion_slow(detail::uring_op op, int res, std::uint32_t flags);
    void uring_sync_reading();
    result<void> uring_write(std::span<const std::byte> data);
    bool uring_submit_send();
    void uring_end_send() noexcept;
    void on_recv(int res, std::uint32_t flags);
    void on_send(int res);
    void uring_watch_hangup();
    void on_hangup(int res);

    loop* loop_;
    unique_fd fd_;
    std::shared_ptr<const connection_callbacks> callbacks_;
    connection_options opts_;
    connection_registry* registry_;
    connection* reg_prev_ = nullptr;  // intrusive registry list: no allocation per connection
    connection* reg_next_ = nullptr;
    connection_ptr self_;  // keeps us alive while open and during on_closed

    end_machine end_;

    std::vector<std::byte> out_;  // buffered output: [out_head_, size)
    std::size_t out_head_ = 0;
    std::uint32_t interest_ = 0;
    timeout_kind timeout_fired_ = timeout_kind::none;
    bool above_high_ = false;
    bool parked_ = false;  // unwatched after EPOLLHUP while reading is paused, or awaiting acks

    // io_uring only: the send in flight reads [send_ptr_, send_ptr_ + send_left_), stable until
    // its completion: inside inflight_, or inside the provided buffer held_buf_ the bytes were
    // received in (an echo from on_data is sent from where it arrived, without a copy), while
    // write() appends to out_; bytes that arrived while reading was paused wait in stash_.
    std::vector<std::byte> inflight_;
    const std::byte* send_ptr_ = nullptr;
    std::size_t send_left_ = 0;
    std::int32_t held_buf_ = -1;
    std::vector<std::byte> stash_;
    std::size_t stash_head_ = 0;
    unique_fd retired_fd_;          // released, closed once the requests in flight complete
    end_facts release_facts_;       // what the release knew, settled at finish_release()
    std::uint32_t read_ahead_ = 0;  // unread bytes that we (not the kernel) hold or held
    bool judged_ = false;           // the outcome is judged from the facts (close(), ~loop())
    bool abortive_ = false;
    bool fin_wanted_at_release_ = false;
    std::uint8_t in_flight_ = 0;  // requests whose final completion has not come
    bool uring_ = false;
    bool recv_armed_ = false;
    bool recv_cancelling_ = false;
    bool send_in_flight_ = false;
    bool stash_eof_ = false;
    bool hangup_armed_ = false;
    // io_uring: ENOTCONN with SO_ERROR empty while a recv was armed: the recv took the socket's
    // error (reading it clears it); its completion, on its way, says what ended the connection.
    bool error_in_recv_ = false;
    bool hangup_parked_ = false;  // POLLHUP while paused: wait for the resume to read on

    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;
    std::uint64_t id_;

    timer_id timer_ = 0;
    clock::time_point timer_at_ = clock::time_point::max();

    endpoint local_;
    endpoint peer_;
    // Made only when the connection ends: a live connection does not carry the ~400 bytes of a
    // report it does not have yet (memory per idle connection is a benchmark target).
    std::unique_ptr<close_report> report_;
    std::shared_ptr<void> context_;
    std::unique_ptr<stream_filter> filter_;  // null for plain TCP
};

}  // namespace orderly
