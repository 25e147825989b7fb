#pragma once
// The `served` fixture: one connection adopted on a loop thread, with every close report recorded
// and on_closed checked to run exactly once.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

#include "event_test_util.hpp"
#include "orderly/event/connection.hpp"
#include "orderly/event/registry.hpp"

namespace orderly {

// One served connection on a loop thread, with every callback counted.
class served : public testing::Test {
  protected:
    // Adopts the server side of a fresh pair with `cbs` (on_closed is wrapped to record).
    void serve(connection_callbacks cbs, connection_options opts = {}) {
        pair_ = test::make_tcp_pair();
        serve_pair(std::move(cbs), opts);
    }
    // The same with pair_ made (and its sockets tuned) by the test.
    void serve_pair(connection_callbacks cbs, connection_options opts = {}) {
        ASSERT_TRUE(pair_.client.valid() && pair_.server.valid());
        user_closed_ = std::move(cbs.on_closed);
        cbs.on_closed = [this](connection& c, const close_report& r) {
            if (user_closed_) user_closed_(c, r);
            std::lock_guard lock(mu_);
            reports_.push_back(r);
            closed_count_++;
        };
        auto shared = std::make_shared<const connection_callbacks>(std::move(cbs));
        conn_ = lt_.sync([&] {
            auto c = connection::adopt(lt_.lp, std::move(pair_.server), shared, opts, &registry_);
            EXPECT_TRUE(c.has_value());
            return c ? *c : connection_ptr{};
        });
        ASSERT_TRUE(conn_);
    }
    bool wait_closed(std::chrono::milliseconds t = std::chrono::seconds(10)) {
        return test::wait_for([&] { return closed_count_.load() > 0; }, t);
    }
    close_report report() {
        std::lock_guard lock(mu_);
        return reports_.empty() ? close_report{} : reports_.front();
    }
    void TearDown() override {
        if (conn_) {
            lt_.sync([&] {
                if (conn_->is_open()) conn_->abort();
            });
            EXPECT_TRUE(wait_closed());
            lt_.sync([] {});  // let the deferred on_closed finish
            EXPECT_EQ(closed_count_.load(), 1) << "on_closed must run exactly once";
            conn_.reset();
        }
        EXPECT_EQ(registry_.size(), 0U);
    }

    test::loop_thread lt_;
    connection_registry registry_;
    test::tcp_pair pair_;
    connection_ptr conn_;
    std::function<void(connection&, const close_report&)> user_closed_;
    std::mutex mu_;
    std::vector<close_report> reports_;
    std::atomic<int> closed_count_{0};
};

}  // namespace orderly
