// The event layer's Happy Eyeballs connect over loopback: what it hands over, when the handler
// runs, and that nothing is left open. The race against dropped SYNs is in tests/faults.

#include "orderly/event/connector.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "event_test_util.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/net/hosts_file.hpp"
#include "orderly/net/listener.hpp"
#include "support/loopback.hpp"

using namespace std::chrono_literals;

namespace orderly {
namespace {

// What the handler saw; filled on the loop thread, read after `done` is ready.
struct outcome {
    std::promise<void> promise;
    std::shared_future<void> done = promise.get_future().share();
    connection_ptr conn;
    error_info error;
    connect_report report;
    std::atomic<int> calls{0};
    bool opened_before_handler = false;
};

class async_connect : public testing::Test {
  protected:
    void TearDown() override {
        // Every connection this test made ends on its loop, before the loop goes.
        lt_.sync([&] {
            for (auto& c : conns_)
                if (c && c->is_open()) c->close();
            conns_.clear();
        });
        lt_.sync([] {});  // the deferred releases of this batch
    }

    // A handler recording into `o`; the connection is kept for TearDown.
    connect_handler record(const std::shared_ptr<outcome>& o) {
        return [this, o](result<connection_ptr, error_info> r, const connect_report& rep) {
            o->report = rep;
            if (r) {
                o->conn = *r;
                o->opened_before_handler = opened_.load();
                conns_.push_back(*r);
            } else {
                o->error = r.error();
            }
            if (o->calls.fetch_add(1) == 0) o->promise.set_value();
        };
    }

    std::shared_ptr<const connection_callbacks> callbacks() {
        auto cb = std::make_shared<connection_callbacks>();
        cb->on_open = [this](connection&) { opened_ = true; };
        return cb;
    }

    static endpoint closed_port() {
        auto l = listener::listen(endpoint::ipv4_loopback(0));
        EXPECT_TRUE(l.has_value());
        return l ? l->local_endpoint() : endpoint{};
    }

    test::loop_thread lt_;
    std::vector<connection_ptr> conns_;  // loop thread only
    std::atomic<bool> opened_{false};
};

TEST_F(async_connect, hands_over_an_adopted_connection) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    auto o = std::make_shared<outcome>();
    const std::string where = l->local_endpoint().to_string();
    bool ran_inside = false;
    lt_.sync([&] {
        (void)orderly::connect(lt_.lp, where, callbacks(), record(o));
        ran_inside = o->calls.load() > 0;
    });
    ASSERT_EQ(o->done.wait_for(5s), std::future_status::ready);
    EXPECT_FALSE(ran_inside);
    ASSERT_TRUE(o->conn) << o->error.message();
    EXPECT_TRUE(o->opened_before_handler) << "on_open runs inside adopt, before the handler";
    EXPECT_EQ(lt_.sync([&] { return o->conn->peer_endpoint(); }), l->local_endpoint());
    EXPECT_EQ(o->report.winner, 0U);
    auto s = l->accept(deadline::after(5s));
    ASSERT_TRUE(s) << s.error().message();
    // The connection works: bytes written on the loop reach the peer.
    lt_.sync([&] { EXPECT_TRUE(o->conn->write(std::string_view("hi"))); });
    char buf[2];
    auto n = s->recv(std::span<char>(buf), deadline::after(5s));
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string(buf, *n), "hi");
    EXPECT_EQ(o->calls.load(), 1);
}

TEST_F(async_connect, a_refusal_hands_over_to_the_next_address_at_once) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    const std::vector<endpoint> to = {closed_port(), l->local_endpoint()};
    auto o = std::make_shared<outcome>();
    // The longest attempt delay, so that "at once" stands clear of it on a loaded machine.
    connect_options opts;
    opts.attempt_delay = 2s;
    const auto started = clock::now();
    lt_.sync([&] { (void)orderly::connect(lt_.lp, to, callbacks(), record(o), opts); });
    ASSERT_EQ(o->done.wait_for(5s), std::future_status::ready);
    ASSERT_TRUE(o->conn) << o->error.message();
    EXPECT_LT(clock::now() - started, 1s) << "waited for the attempt delay after a refusal";
    ASSERT_EQ(o->report.attempts.size(), 2U);
    EXPECT_EQ(o->report.attempts[0].error, std::errc::connection_refused);
    EXPECT_EQ(o->report.winner, 1U);
    EXPECT_TRUE(l->accept(deadline::after(5s)));
    EXPECT_FALSE(l->accept(deadline::after(50ms))) << "exactly one connection";
}

TEST_F(async_connect, every_address_refused_gives_one_error_naming_each) {
    const std::vector<endpoint> to = {closed_port(), closed_port()};
    auto o = std::make_shared<outcome>();
    lt_.sync([&] { (void)orderly::connect(lt_.lp, to, callbacks(), record(o)); });
    ASSERT_EQ(o->done.wait_for(5s), std::future_status::ready);
    EXPECT_FALSE(o->conn);
    EXPECT_EQ(o->error.code, std::errc::connection_refused);
    EXPECT_EQ(o->error.message(), "connect to 2 addresses: " + to[0].to_string() +
                                      ": connection refused; " + to[1].to_string() +
                                      ": connection refused");
    lt_.sync([] {});
    EXPECT_EQ(o->calls.load(), 1);
}

TEST_F(async_connect, bad_input_is_reported_through_the_handler_not_inside_connect) {
    auto bad_port = std::make_shared<outcome>();
    auto bad_delay = std::make_shared<outcome>();
    lt_.sync([&] {
        (void)orderly::connect(lt_.lp, "127.0.0.1:99999", callbacks(), record(bad_port));
        connect_options o;
        o.attempt_delay = 3s;
        (void)orderly::connect(lt_.lp, "127.0.0.1:80", callbacks(), record(bad_delay), o);
        EXPECT_EQ(bad_port->calls.load() + bad_delay->calls.load(), 0);
    });
    ASSERT_EQ(bad_port->done.wait_for(5s), std::future_status::ready);
    ASSERT_EQ(bad_delay->done.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(bad_port->error.code, errc::address_parse);
    EXPECT_NE(bad_port->error.message().find("99999"), std::string::npos);
    EXPECT_EQ(bad_delay->error.code, errc::invalid_argument);
}

TEST_F(async_connect, cancel_ends_the_race_and_calls_the_handler_once) {
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    auto o = std::make_shared<outcome>();
    const std::string where = l->local_endpoint().to_string();
    lt_.sync([&] {
        pending_connect p = orderly::connect(lt_.lp, where, callbacks(), record(o));
        EXPECT_TRUE(p.running());
        p.cancel();  // before the loop saw EPOLLOUT: the attempt is still in flight here
        EXPECT_FALSE(p.running());
        EXPECT_EQ(o->calls.load(), 1) << "the handler runs before cancel() returns";
        p.cancel();
    });
    ASSERT_EQ(o->done.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(o->error.code, errc::aborted);
    ASSERT_EQ(o->report.attempts.size(), 1U);
    // In flight when cancelled; loopback may have finished the handshake meanwhile.
    EXPECT_TRUE(o->report.attempts[0].outcome == attempt_outcome::cancelled ||
                o->report.attempts[0].outcome == attempt_outcome::lost_tie);
    lt_.sync([] {});
    EXPECT_EQ(o->calls.load(), 1);
}

TEST_F(async_connect, a_name_from_the_hosts_file) {
    // From the hosts file: no lookup thread, no DNS query (which would leave loopback).
    auto pinned = hosts_file_lookup("localhost", "1");
    if (!pinned || pinned->empty()) GTEST_SKIP() << "/etc/hosts does not name localhost";
    auto l = listener::listen(endpoint::ipv4_loopback(0));
    ASSERT_TRUE(l);
    auto o = std::make_shared<outcome>();
    const std::string where = "localhost:" + std::to_string(l->local_endpoint().port());
    lt_.sync([&] { (void)orderly::connect(lt_.lp, where, callbacks(), record(o)); });
    ASSERT_EQ(o->done.wait_for(5s), std::future_status::ready);
    ASSERT_TRUE(o->conn) << o->error.message();
    EXPECT_TRUE(l->accept(deadline::after(5s)));
}

}  // namespace
}  // namespace orderly
