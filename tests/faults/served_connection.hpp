#pragma once
// Shared by the event-layer fault tests (plain TCP and TLS): a loop on its own thread and one
// accepted connection adopted on it, optionally over a filter (a tls_filter), and what the loop
// thread saw of it.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "fault_common.hpp"
#include "orderly/event/connection.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/stream_filter.hpp"

namespace orderly::test::faults {

// What the loop thread saw; written there, read by the test only after `closed` is ready.
struct observed {
    std::promise<void> closed_promise;
    std::shared_future<void> closed = closed_promise.get_future().share();
    close_report report;
    timeout_kind fired = timeout_kind::none;
    steady::time_point closed_at;
    std::string received;  // what on_data got (plaintext over TLS)
    std::atomic<std::size_t> received_bytes{0};
};

class served_connection {
  public:
    // `filter` null: plain TCP.
    explicit served_connection(stream_socket accepted, connection_callbacks extra = {},
                               std::unique_ptr<stream_filter> filter = nullptr)
        : obs_(std::make_shared<observed>()) {
        auto cb = std::make_shared<connection_callbacks>(std::move(extra));
        std::weak_ptr<observed> weak = obs_;
        auto user_data = cb->on_data;
        cb->on_data = [weak, user_data](connection& c, std::span<const std::byte> d) {
            if (auto o = weak.lock()) {
                o->received.append(reinterpret_cast<const char*>(d.data()), d.size());
                o->received_bytes += d.size();
            }
            if (user_data) user_data(c, d);
        };
        cb->on_closed = [weak](connection& c, const close_report& r) {
            if (auto o = weak.lock()) {
                o->closed_at = steady::now();
                o->report = r;
                o->fired = c.timeout_fired();
                o->closed_promise.set_value();
            }
        };
        thread_ = std::thread([this] { lp_.run(); });
        auto fd = std::make_shared<unique_fd>(accepted.release());
        auto f = std::make_shared<std::unique_ptr<stream_filter>>(std::move(filter));
        auto made = std::make_shared<std::promise<connection_ptr>>();
        auto made_future = made->get_future();
        lp_.post([this, fd, f, cb, made] {
            auto c = connection::adopt(lp_, std::move(*fd), std::move(*f), cb);
            made->set_value(c ? *c : nullptr);
        });
        if (made_future.wait_for(5s) == std::future_status::ready) conn_ = made_future.get();
    }

    ~served_connection() {
        // Whatever the test's outcome, the connection ends (RST) and is destroyed on its loop,
        // then the loop stops: nothing may outlive the test with a descriptor.
        lp_.post([this] {
            if (conn_ && conn_->is_open()) conn_->abort();
        });
        if (conn_) (void)obs_->closed.wait_for(3s);
        lp_.post([this] {
            conn_.reset();
            lp_.stop();
        });
        thread_.join();
    }
    served_connection(const served_connection&) = delete;
    served_connection& operator=(const served_connection&) = delete;

    [[nodiscard]] bool ok() const { return conn_ != nullptr; }
    // Runs fn(connection&) on the loop thread.
    template <class F>
    void on_loop(F fn) {
        lp_.post([this, fn] {
            if (conn_) fn(*conn_);
        });
    }
    // Waits (bounded) for on_closed.
    bool wait_closed(steady::duration d) {
        return obs_->closed.wait_for(d) == std::future_status::ready;
    }
    observed& seen() { return *obs_; }

  private:
    loop lp_;
    std::thread thread_;
    connection_ptr conn_;
    std::shared_ptr<observed> obs_;
};

}  // namespace orderly::test::faults
