#include "orderly/event/loop.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "event_test_util.hpp"

using namespace std::chrono_literals;

namespace orderly {
namespace {

TEST(loop, timers_fire_in_deadline_order_and_cancelled_ones_do_not) {
    loop lp;
    std::vector<int> order;
    const auto now = clock::now();
    lp.run_at(now + 30ms, [&] { order.push_back(3); });
    lp.run_at(now + 10ms, [&] { order.push_back(1); });
    const timer_id dropped = lp.run_at(now + 20ms, [&] { order.push_back(99); });
    lp.run_at(now + 20ms, [&] { order.push_back(2); });
    lp.run_at(now + 40ms, [&] { lp.stop(); });
    EXPECT_TRUE(lp.cancel(dropped));
    EXPECT_FALSE(lp.cancel(dropped));
    EXPECT_FALSE(lp.cancel(0));
    lp.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_GE(clock::now() - now, 40ms);
    EXPECT_EQ(lp.timer_count(), 0U);
}

TEST(loop, a_timer_does_not_fire_early_and_a_fired_one_cannot_be_cancelled) {
    loop lp;
    const auto start = clock::now();
    clock::time_point fired;
    const timer_id id = lp.run_after(25ms, [&] {
        fired = clock::now();
        lp.stop();
    });
    lp.run();
    EXPECT_GE(fired - start, 25ms);
    EXPECT_FALSE(lp.cancel(id));
}

TEST(loop, many_cancelled_timers_do_not_accumulate) {
    loop lp;
    for (int i = 0; i < 10000; ++i) {
        const timer_id id = lp.run_after(1h, [] {});
        ASSERT_TRUE(lp.cancel(id));
    }
    EXPECT_EQ(lp.timer_count(), 0U);
    lp.run_after(1ms, [&] { lp.stop(); });
    lp.run();
}

TEST(loop, posts_from_many_threads_all_run_on_the_loop_thread) {
    test::loop_thread lt;
    constexpr int threads = 4;
    constexpr int per_thread = 2000;
    std::atomic<int> ran{0};
    std::atomic<int> off_thread{0};
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                lt.lp.post([&] {
                    if (!lt.lp.in_loop_thread()) off_thread++;
                    ran++;
                });
            }
        });
    }
    for (auto& t : posters)
        t.join();
    EXPECT_TRUE(test::wait_for([&] { return ran.load() == threads * per_thread; }));
    EXPECT_EQ(off_thread.load(), 0);
}

TEST(loop, posts_from_one_thread_run_in_order) {
    test::loop_thread lt;
    std::vector<int> seen;
    for (int i = 0; i < 1000; ++i)
        lt.lp.post([&seen, i] { seen.push_back(i); });
    lt.sync([] {});
    ASSERT_EQ(seen.size(), 1000U);
    for (int i = 0; i < 1000; ++i)
        EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
}

TEST(loop, stop_from_another_thread_wakes_a_blocked_run) {
    loop lp;
    std::thread t([&] { lp.run(); });
    std::this_thread::sleep_for(20ms);
    const auto start = clock::now();
    lp.stop();
    t.join();
    EXPECT_LT(clock::now() - start, 1s);
    EXPECT_TRUE(lp.stopped());
}

TEST(loop, stop_before_run_makes_run_return_at_once) {
    loop lp;
    lp.stop();
    lp.run();
    SUCCEED();
}

TEST(loop, deferred_tasks_run_after_the_current_callback) {
    loop lp;
    std::vector<int> order;
    lp.post([&] {
        lp.defer([&] { order.push_back(2); });
        order.push_back(1);
    });
    lp.post([&] {
        order.push_back(3);  // same batch of posts: runs before the deferred task
        lp.stop();
    });
    lp.run();
    EXPECT_EQ(order, (std::vector<int>{1, 3, 2}));
}

TEST(loop, signals_arrive_through_the_signalfd) {
    std::atomic<int> got{0};
    std::atomic<bool> ready{false};
    loop* lpp = nullptr;
    std::thread t([&] {
        loop lp;
        lpp = &lp;
        auto r = lp.on_signal(SIGUSR1, [&](int signo) {
            got = signo;
            lp.stop();
        });
        EXPECT_TRUE(r.has_value());
        lp.run_after(5s, [&] { lp.stop(); });  // bound in time
        ready = true;
        lp.run();
    });
    ASSERT_TRUE(test::wait_for([&] { return ready.load(); }));
    // Directed at the loop thread, which blocks SIGUSR1: it stays pending for the signalfd.
    ::pthread_kill(t.native_handle(), SIGUSR1);
    t.join();
    EXPECT_EQ(got.load(), SIGUSR1);
    (void)lpp;
}

}  // namespace
}  // namespace orderly

namespace orderly {
namespace {

// The suite runs once per backend (tests/CMakeLists.txt sets ORDERLY_BACKEND): make sure each run
// really is on the backend its name says, and that io_uring is usable here at all.
TEST(loop_backend, follows_the_environment) {
    const char* env = std::getenv("ORDERLY_BACKEND");
    loop lp;
    if (env == nullptr) {
        EXPECT_EQ(lp.backend(), automatic_backend()) << automatic_backend_reason();
    } else if (std::string(env) == "epoll") {
        EXPECT_EQ(lp.backend(), loop_backend::epoll);
    } else {
        EXPECT_EQ(lp.backend(), loop_backend::io_uring) << automatic_backend_reason();
    }
    loop_options o;
    o.backend = loop_backend::epoll;
    EXPECT_EQ(loop(o).backend(), loop_backend::epoll) << "an explicit choice wins";
}

}  // namespace
}  // namespace orderly
