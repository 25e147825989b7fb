#pragma once
// end_machine: the orderly end of one event-layer connection, apart from how its bytes move.
//
// Per direction: ours goes open -> FIN wanted -> FIN sent; the peer's goes open -> EOF. Around
// them: a graceful close with its deadline and drain cap, the wait for the last acknowledgements
// once both FINs went, the inactivity / lifetime timeouts and the CLOSE_WAIT detector. Over TLS
// each direction has one more step (our close_notify before our FIN; the peer's close_notify
// before its FIN), and a FIN without close_notify is a truncation.
//
// It is the same machine whether the bytes move through epoll and recv/send, through io_uring
// completions or through TLS records: a backend only reports facts (bytes read or written, EOF,
// FIN sent, what the kernel said) and asks what to do next (read? send FIN now? when is the next
// deadline?). Outcomes are judged by end_rules.hpp, shared with the blocking layer. No syscalls,
// no loop, no allocation: it is tested on its own (tests/unit/event/end_machine_test.cpp).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "orderly/core/deadline.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/end_rules.hpp"

namespace orderly {

// Where a connection stands; the words of the diagnostics registry.
enum class connection_state : std::uint8_t {
    open,                 // both directions open
    half_closed_by_peer,  // the peer's FIN was read; we may still write (CLOSE_WAIT in the kernel)
    half_closed_by_us,    // we asked for FIN (sent once the output buffer drains); still reading
    closing,              // close_gracefully() in progress, or both FINs pending our flush
    closed,               // the descriptor is released; on_closed is due or has run
};
inline constexpr std::size_t connection_state_count = 5;
std::string_view to_string(connection_state s) noexcept;

// Which timer ended a connection (all of them abort: the peer gets RST, the outcome is timed_out).
enum class timeout_kind : std::uint8_t {
    none,
    idle,       // no byte read or written for idle_timeout
    read,       // reading wanted, no byte arrived for read_timeout
    write,      // output buffered (or, after both FINs, unacknowledged), no byte accepted for
                // write_timeout
    close,      // close_gracefully() did not see the peer's EOF in time
    lifetime,   // lifetime_timeout passed since the connection opened, however busy it was
    handshake,  // TLS: the handshake did not finish within handshake_timeout of adopt()
};
std::string_view to_string(timeout_kind k) noexcept;

// The timeouts an end_machine enforces (zero disables one); see connection_options.
struct end_limits {
    clock::duration idle{0};
    clock::duration read{0};
    clock::duration write{0};
    clock::duration lifetime{0};
    clock::duration close_wait_after{0};
    clock::duration handshake{0};  // counted from opening while a handshake is pending
};

class end_machine {
  public:
    end_machine(const end_limits& limits, clock::time_point now) noexcept
        : limits_(limits),
          opened_at_(now),
          last_read_(now),
          last_write_(now),
          state_since_(now),
          timed_(limits.idle.count() > 0 || limits.read.count() > 0 || limits.write.count() > 0 ||
                 limits.lifetime.count() > 0 || limits.close_wait_after.count() > 0) {}

    // --- What the application asked for. ---

    // shutdown_write(): FIN once the output has drained. False if it was already wanted.
    bool want_fin() noexcept;
    enum class close_step : std::uint8_t {
        started,     // the graceful close begins: flush, FIN, drain
        tightened,   // already closing: the deadline or the cap moved closer (re-arm the timer)
        unchanged,   // already closing with bounds at least as tight
        out_of_time  // the timeout is zero or past: end now with timed_out
    };
    // close_gracefully(timeout, drain_limit). A later call only tightens the bounds.
    close_step begin_close(clock::time_point now, clock::duration timeout,
                           std::uint64_t drain_limit) noexcept;
    void set_user_paused(bool paused, clock::time_point now) noexcept;
    // Reading paused for backpressure (output above the high-water mark).
    void set_backpressure_paused(bool paused, clock::time_point now) noexcept {
        if (backpressure_paused_ && !paused) last_read_ = now;  // as set_user_paused
        backpressure_paused_ = paused;
    }

    // --- What the transport saw. ---

    void read_progress(clock::time_point now) noexcept { last_read_ = now; }
    void write_progress(clock::time_point now) noexcept { last_write_ = now; }
    // Bytes that arrived while closing are drained, not delivered. False once past the cap.
    [[nodiscard]] bool drain(std::uint64_t bytes) noexcept {
        drained_ += bytes;
        return drained_ <= drain_limit_;
    }
    void fin_sent() noexcept { fin_sent_ = true; }
    // The peer's FIN was read (for TLS: its close_notify; see tcp_eof).
    void peer_eof(clock::time_point now) noexcept;
    // Both FINs are out: `clean` still needs the peer's acknowledgement of every byte. While
    // waiting, the transport polls the send queue at ack_poll_due() (no readiness event says
    // "send queue empty").
    void begin_ack_wait(clock::time_point now) noexcept;
    // The send queue was not empty at the poll: the next poll comes later (1, 2, 4 ... 64 ms).
    void ack_poll_missed(clock::time_point now) noexcept;
    void close_wait_reported() noexcept { close_wait_reported_ = true; }
    // TLS: a handshake runs from opening until handshake_finished() (its own timeout).
    void handshake_started() noexcept { handshake_pending_ = true; }
    void handshake_finished() noexcept { handshake_pending_ = false; }
    // TLS: peer_eof() is the peer's close_notify; tcp_eof() its FIN after it.
    void set_tls() noexcept { tls_ = true; }
    void tcp_eof() noexcept { peer_tcp_eof_ = true; }
    [[nodiscard]] bool peer_tcp_eof_seen() const noexcept { return peer_tcp_eof_; }
    // The connection ended (its descriptor is being released); refresh_state() follows.
    void released() noexcept {
        released_ = true;
        ack_wait_ = false;
    }

    // --- Questions. ---

    [[nodiscard]] bool is_closing() const noexcept { return closing_; }
    [[nodiscard]] bool fin_wanted() const noexcept { return fin_wanted_; }
    [[nodiscard]] bool fin_was_sent() const noexcept { return fin_sent_; }
    [[nodiscard]] bool peer_eof_seen() const noexcept { return peer_eof_; }
    [[nodiscard]] bool in_ack_wait() const noexcept { return ack_wait_; }
    [[nodiscard]] bool user_paused() const noexcept { return user_paused_; }
    [[nodiscard]] bool backpressure_paused() const noexcept { return backpressure_paused_; }
    // Does the transport send FIN now? (FIN wanted, not yet sent, nothing left to flush.)
    [[nodiscard]] bool fin_due(bool output_empty) const noexcept {
        return fin_wanted_ && !fin_sent_ && output_empty;
    }
    // Both directions ended in order; what remains is the wait for acknowledgements.
    // (Over TLS also the peer's TCP FIN after its close_notify.)
    [[nodiscard]] bool both_done() const noexcept {
        return peer_eof_ && fin_sent_ && (!tls_ || peer_tcp_eof_);
    }
    // Should the transport read? Always while closing (the peer's bytes must be drained),
    // otherwise unless paused; never after the peer's EOF or once released.
    // Over TLS, reading goes on after the peer's close_notify until its TCP FIN (no plaintext
    // can follow, so no pause holds it back).
    [[nodiscard]] bool wants_read() const noexcept {
        if (released_) return false;
        if (tls_ && peer_eof_) return !peer_tcp_eof_;
        // A pending handshake reads whatever the pauses say: the output they wait on to drain
        // cannot move before it finishes (and it delivers no data).
        return !peer_eof_ &&
               (closing_ || handshake_pending_ || (!user_paused_ && !backpressure_paused_));
    }
    [[nodiscard]] connection_state state() const noexcept;
    // Whether the state changed since the last call (for the registry); updates state_since.
    bool refresh_state(clock::time_point now) noexcept;
    [[nodiscard]] connection_state current_state() const noexcept { return state_; }
    [[nodiscard]] clock::time_point state_since() const noexcept { return state_since_; }

    // The earliest moment something is due: a timeout, the close deadline, an ack poll or the
    // CLOSE_WAIT report. time_point::max() when nothing is.
    [[nodiscard]] clock::time_point next_deadline(bool output_pending) const noexcept;
    // False when next_deadline() is time_point::max() whatever the output: no timeout
    // configured, no handshake, close or ack wait under way. (The hot path asks this first.)
    [[nodiscard]] bool may_have_deadline() const noexcept {
        return timed_ || ack_wait_ || closing_ ||
               (handshake_pending_ && limits_.handshake.count() > 0);
    }
    // The timeout that is due at `now`, if any (the close deadline and the lifetime first).
    [[nodiscard]] timeout_kind timeout_due(clock::time_point now,
                                           bool output_pending) const noexcept;
    [[nodiscard]] bool ack_poll_due(clock::time_point now) const noexcept {
        return ack_wait_ && now >= next_ack_poll_;
    }
    [[nodiscard]] bool close_wait_due(clock::time_point now) const noexcept;

    // How the end was asked for (graceful after shutdown_write / close_gracefully).
    [[nodiscard]] close_method method() const noexcept { return method_; }
    // The facts for end_rules: the queue sizes and the pending error come from the caller.
    [[nodiscard]] end_facts facts() const noexcept;
    [[nodiscard]] std::uint64_t drained_bytes() const noexcept { return drained_; }
    [[nodiscard]] clock::time_point opened_at() const noexcept { return opened_at_; }
    // Time spent in close_gracefully, zero if it was never called.
    [[nodiscard]] clock::duration close_duration(clock::time_point now) const noexcept {
        return closing_ ? now - close_started_ : clock::duration::zero();
    }

  private:
    end_limits limits_;
    clock::time_point opened_at_;
    clock::time_point last_read_;
    clock::time_point last_write_;
    clock::time_point peer_eof_at_{};
    clock::time_point close_started_{};
    clock::time_point close_deadline_ = clock::time_point::max();
    clock::time_point next_ack_poll_ = clock::time_point::max();
    clock::time_point state_since_;
    std::uint64_t drained_ = 0;
    std::uint64_t drain_limit_ = 0;
    close_method method_ = close_method::close;
    connection_state state_ = connection_state::open;
    std::uint8_t ack_interval_ms_ = 0;
    bool fin_wanted_ = false;
    bool fin_sent_ = false;
    bool peer_eof_ = false;
    bool closing_ = false;
    bool ack_wait_ = false;
    bool user_paused_ = false;
    bool backpressure_paused_ = false;
    bool close_wait_reported_ = false;
    bool released_ = false;
    bool handshake_pending_ = false;
    bool tls_ = false;
    bool peer_tcp_eof_ = false;
    bool timed_ = false;  // some limit other than the handshake's is set
};

}  // namespace orderly
