#include "orderly/event/registry.hpp"

namespace orderly {

connection_info describe(const connection& c) {
    connection_info i;
    i.id = c.id();
    i.state = c.state();
    i.local = c.local_endpoint();
    i.peer = c.peer_endpoint();
    i.in_state = clock::now() - c.state_since();
    i.bytes_sent = c.bytes_sent();
    i.bytes_received = c.bytes_received();
    i.buffered = c.buffered_bytes();
    return i;
}

state_counts connection_registry::counts() const noexcept {
    state_counts out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = counts_[i].load(std::memory_order_relaxed);
    }
    return out;
}

void connection_registry::for_each(const std::function<void(connection&)>& fn) {
    // Removal is deferred by the connection itself, so the list cannot change under us here.
    for (connection* c = head_; c != nullptr;) {
        connection* next = c->reg_next_;
        fn(*c);
        c = next;
    }
}

std::vector<connection_info> connection_registry::snapshot() {
    std::vector<connection_info> out;
    out.reserve(size());
    for_each([&out](connection& c) { out.push_back(describe(c)); });
    return out;
}

void connection_registry::add(connection* c) noexcept {
    c->reg_prev_ = nullptr;
    c->reg_next_ = head_;
    if (head_ != nullptr) head_->reg_prev_ = c;
    head_ = c;
    counts_[static_cast<std::size_t>(c->state())].fetch_add(1, std::memory_order_relaxed);
    size_.fetch_add(1, std::memory_order_release);
}

void connection_registry::remove(connection* c) noexcept {
    if (c->reg_prev_ != nullptr) {
        c->reg_prev_->reg_next_ = c->reg_next_;
    } else {
        head_ = c->reg_next_;
    }
    if (c->reg_next_ != nullptr) c->reg_next_->reg_prev_ = c->reg_prev_;
    counts_[static_cast<std::size_t>(c->state())].fetch_sub(1, std::memory_order_relaxed);
    c->reg_prev_ = c;  // marks "not registered" for refresh_state
    c->reg_next_ = nullptr;
    size_.fetch_sub(1, std::memory_order_release);
    if (on_removed) on_removed();
}

void connection_registry::moved(connection_state from, connection_state to) noexcept {
    counts_[static_cast<std::size_t>(from)].fetch_sub(1, std::memory_order_relaxed);
    counts_[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace orderly
