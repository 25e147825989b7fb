#pragma once
// connection_registry: the live connections of one loop, by state — what `ss` would show, from the
// application's side (who half-closed, who is closing). Connections link themselves in (an
// intrusive list: no allocation); counts are atomics so any thread may read them.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "orderly/event/connection.hpp"

namespace orderly {

// A copy of one connection's diagnostics, safe to keep after the connection is gone.
struct connection_info {
    std::uint64_t id = 0;
    connection_state state = connection_state::open;
    endpoint local;
    endpoint peer;
    clock::duration in_state{0};  // since the last state change
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::size_t buffered = 0;
};
connection_info describe(const connection& c);

using state_counts = std::array<std::size_t, connection_state_count>;

class connection_registry {
  public:
    connection_registry() = default;
    connection_registry(const connection_registry&) = delete;
    connection_registry& operator=(const connection_registry&) = delete;
    ~connection_registry() = default;

    // Thread-safe: live connections in each state (index by connection_state), and in total.
    [[nodiscard]] state_counts counts() const noexcept;
    [[nodiscard]] std::size_t size() const noexcept {
        return size_.load(std::memory_order_acquire);
    }

    // Loop thread only: visit every registered connection (may be closed but not yet removed).
    // `fn` may end the connection it is given; it must not end others.
    void for_each(const std::function<void(connection&)>& fn);
    [[nodiscard]] std::vector<connection_info> snapshot();

    // Loop thread: called each time a registered connection releases its descriptor (a server
    // resumes accepting after descriptor exhaustion) and after one leaves the registry.
    std::function<void()> on_descriptor_released;
    std::function<void()> on_removed;

  private:
    friend class connection;
    void add(connection* c) noexcept;
    void remove(connection* c) noexcept;
    void moved(connection_state from, connection_state to) noexcept;

    connection* head_ = nullptr;
    std::array<std::atomic<std::size_t>, connection_state_count> counts_{};
    std::atomic<std::size_t> size_{0};
};

}  // namespace orderly
