#include "orderly/event/end_machine.hpp"

#include <algorithm>

namespace orderly {

namespace {

clock::time_point plus(clock::time_point a, clock::duration d) noexcept {
    return d.count() > 0 ? a + d : clock::time_point::max();
}

bool due(clock::time_point now, clock::time_point a, clock::duration d) noexcept {
    return d.count() > 0 && now >= a + d;
}

// The ack poll starts at 1 ms and doubles to this: on loopback the queue is empty at once, on a
// real path it takes a round trip or more, and a stalled peer should not cost a wake-up per ms.
constexpr std::uint8_t max_ack_interval_ms = 64;

}  // namespace

bool end_machine::want_fin() noexcept {
    if (fin_wanted_) return false;
    fin_wanted_ = true;
    method_ = close_method::graceful;
    return true;
}

end_machine::close_step end_machine::begin_close(clock::time_point now, clock::duration timeout,
                                                 std::uint64_t drain_limit) noexcept {
    const auto until = timeout <= clock::duration::zero() ? now : now + timeout;
    if (closing_) {
        drain_limit_ = std::min(drain_limit_, drain_limit);
        if (timeout <= clock::duration::zero()) return close_step::out_of_time;
        if (until >= close_deadline_) return close_step::unchanged;
        close_deadline_ = until;
        return close_step::tightened;
    }
    closing_ = true;
    fin_wanted_ = true;
    method_ = close_method::graceful;
    close_started_ = now;
    close_deadline_ = until;
    drain_limit_ = drain_limit;
    return timeout <= clock::duration::zero() ? close_step::out_of_time : close_step::started;
}

void end_machine::set_user_paused(bool paused, clock::time_point now) noexcept {
    if (user_paused_ && !paused) last_read_ = now;  // the read timeout restarts with reading
    user_paused_ = paused;
}

void end_machine::peer_eof(clock::time_point now) noexcept {
    peer_eof_ = true;
    peer_eof_at_ = now;
}

void end_machine::begin_ack_wait(clock::time_point now) noexcept {
    if (ack_wait_) return;
    ack_wait_ = true;
    ack_interval_ms_ = 1;
    next_ack_poll_ = now + std::chrono::milliseconds(ack_interval_ms_);
}

void end_machine::ack_poll_missed(clock::time_point now) noexcept {
    ack_interval_ms_ =
        static_cast<std::uint8_t>(std::min<unsigned>(2U * ack_interval_ms_, max_ack_interval_ms));
    next_ack_poll_ = now + std::chrono::milliseconds(ack_interval_ms_);
}

connection_state end_machine::state() const noexcept {
    if (released_) return connection_state::closed;
    if (closing_ || (peer_eof_ && fin_wanted_)) return connection_state::closing;
    if (fin_wanted_) return connection_state::half_closed_by_us;
    if (peer_eof_) return connection_state::half_closed_by_peer;
    return connection_state::open;
}

bool end_machine::refresh_state(clock::time_point now) noexcept {
    const connection_state s = state();
    if (s == state_) return false;
    state_ = s;
    state_since_ = now;
    return true;
}

clock::time_point end_machine::next_deadline(bool output_pending) const noexcept {
    if (released_) return clock::time_point::max();
    auto t = plus(opened_at_, limits_.lifetime);
    if (ack_wait_) t = std::min(t, next_ack_poll_);
    if (handshake_pending_) t = std::min(t, plus(opened_at_, limits_.handshake));
    if (closing_) return std::min(t, close_deadline_);
    t = std::min(t, plus(std::max(last_read_, last_write_), limits_.idle));
    if (!peer_eof_ && !user_paused_ && !backpressure_paused_) {
        t = std::min(t, plus(last_read_, limits_.read));
    }
    // The write timeout also bounds the wait for acknowledgements: a peer that stopped reading
    // after both FINs never lets the send queue empty.
    if (output_pending || ack_wait_) t = std::min(t, plus(last_write_, limits_.write));
    if (state_ == connection_state::half_closed_by_peer && !close_wait_reported_) {
        t = std::min(t, plus(peer_eof_at_, limits_.close_wait_after));
    }
    return t;
}

timeout_kind end_machine::timeout_due(clock::time_point now, bool output_pending) const noexcept {
    if (released_) return timeout_kind::none;
    if (closing_ && now >= close_deadline_) return timeout_kind::close;
    if (due(now, opened_at_, limits_.lifetime)) return timeout_kind::lifetime;
    if (handshake_pending_ && due(now, opened_at_, limits_.handshake)) {
        return timeout_kind::handshake;
    }
    if (closing_) return timeout_kind::none;  // only the close deadline and the lifetime count
    if ((output_pending || ack_wait_) && due(now, last_write_, limits_.write)) {
        return timeout_kind::write;
    }
    if (!peer_eof_ && !user_paused_ && !backpressure_paused_ &&
        due(now, last_read_, limits_.read)) {
        return timeout_kind::read;
    }
    if (due(now, std::max(last_read_, last_write_), limits_.idle)) return timeout_kind::idle;
    return timeout_kind::none;
}

bool end_machine::close_wait_due(clock::time_point now) const noexcept {
    return state_ == connection_state::half_closed_by_peer && !close_wait_reported_ &&
           due(now, peer_eof_at_, limits_.close_wait_after);
}

end_facts end_machine::facts() const noexcept {
    end_facts f;
    f.fin_sent = fin_sent_;
    f.peer_eof = peer_eof_;
    return f;
}

std::string_view to_string(connection_state s) noexcept {
    switch (s) {
        case connection_state::open:
            return "open";
        case connection_state::half_closed_by_peer:
            return "half_closed_by_peer";
        case connection_state::half_closed_by_us:
            return "half_closed_by_us";
        case connection_state::closing:
            return "closing";
        case connection_state::closed:
            return "closed";
    }
    return "?";
}

std::string_view to_string(timeout_kind k) noexcept {
    switch (k) {
        case timeout_kind::none:
            return "none";
        case timeout_kind::idle:
            return "idle";
        case timeout_kind::read:
            return "read";
        case timeout_kind::write:
            return "write";
        case timeout_kind::close:
            return "close";
        case timeout_kind::lifetime:
            return "lifetime";
        case timeout_kind::handshake:
            return "handshake";
    }
    return "?";
}

}  // namespace orderly
