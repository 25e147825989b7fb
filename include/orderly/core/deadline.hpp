#pragma once
// Deadlines on the monotonic clock. Blocking calls take a deadline (an absolute point) rather than
// a timeout so that a loop of several syscalls cannot stretch the total time.

#include <chrono>
#include <climits>

namespace orderly {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class deadline {
  public:
    // A deadline that never expires.
    constexpr deadline() noexcept = default;
    static constexpr deadline never() noexcept { return {}; }
    static deadline after(clock::duration d) noexcept { return deadline(clock::now() + d); }
    static constexpr deadline at(clock::time_point t) noexcept { return deadline(t); }

    [[nodiscard]] constexpr bool is_never() const noexcept {
        return at_ == clock::time_point::max();
    }
    [[nodiscard]] bool expired() const noexcept { return !is_never() && clock::now() >= at_; }
    [[nodiscard]] constexpr clock::time_point when() const noexcept { return at_; }

    // Time left (zero once expired; clock::duration::max() for never()).
    [[nodiscard]] clock::duration remaining() const noexcept;

    // Milliseconds for poll(2)/epoll_wait(2): -1 for never, 0 when expired, otherwise rounded *up*
    // so that a wait never wakes just before the deadline and spins.
    [[nodiscard]] int poll_timeout_ms() const noexcept;

    // The earlier of two deadlines.
    [[nodiscard]] friend constexpr deadline earliest(deadline a, deadline b) noexcept {
        return a.at_ <= b.at_ ? a : b;
    }

  private:
    constexpr explicit deadline(clock::time_point t) noexcept : at_(t) {}
    clock::time_point at_ = clock::time_point::max();
};

}  // namespace orderly
