#include "orderly/event/loop.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "sys.hpp"
#include "uring.hpp"

namespace orderly {

namespace {

constexpr std::size_t read_buffer_size = std::size_t{64} * 1024;
constexpr int max_events = 256;

// Min-heap on (when, sequence) with the std heap algorithms, which build max-heaps.
struct later {
    template <class E>
    bool operator()(const E& a, const E& b) const noexcept {
        return a.when != b.when ? a.when > b.when : a.sequence > b.sequence;
    }
};

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::system_category(), what);
}

}  // namespace

std::string_view to_string(loop_backend b) noexcept {
    switch (b) {
        case loop_backend::automatic:
            return "automatic";
        case loop_backend::epoll:
            return "epoll";
        case loop_backend::io_uring:
            return "io_uring";
    }
    return "?";
}

namespace {

// The environment's choice, if any: ORDERLY_BACKEND=epoll|io_uring|automatic.
loop_backend backend_from_environment() noexcept {
    const char* v = std::getenv("ORDERLY_BACKEND");
    if (v == nullptr) return loop_backend::automatic;
    if (std::strcmp(v, "epoll") == 0) return loop_backend::epoll;
    if (std::strcmp(v, "io_uring") == 0 || std::strcmp(v, "uring") == 0) {
        return loop_backend::io_uring;
    }
    return loop_backend::automatic;
}

}  // namespace

loop_backend automatic_backend() noexcept {
    const loop_backend env = backend_from_environment();
    if (env != loop_backend::automatic) return env;
    return detail::probe_uring().usable ? loop_backend::io_uring : loop_backend::epoll;
}

const std::string& automatic_backend_reason() {
    static const std::string reason = [] {
        const loop_backend env = backend_from_environment();
        if (env != loop_backend::automatic) {
            return std::string(to_string(env)) + ": ORDERLY_BACKEND=" + std::string(to_string(env));
        }
        const auto& probe = detail::probe_uring();
        if (probe.usable) {
            return probe.reason.empty() ? std::string("io_uring")
                                        : "io_uring (" + probe.reason + ")";
        }
        return "epoll: io_uring is not usable here: " + probe.reason;
    }();
    return reason;
}

loop::loop() : loop(loop_options{}) {}

loop::loop(const loop_options& opts)
    : thread_(std::this_thread::get_id()), read_buffer_(read_buffer_size) {
    backend_ = opts.backend == loop_backend::automatic ? automatic_backend() : opts.backend;
    if (backend_ == loop_backend::io_uring) {
        uring_ = std::make_unique<detail::uring_loop>(opts);
    } else {
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!epoll_) throw_errno("epoll_create1");
    }
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_) throw_errno("eventfd");
    wake_handler_.owner = this;
    signal_handler_.owner = this;
    sigemptyset(&signal_mask_);
    if (!watch(wake_fd_.get(), EPOLLIN, &wake_handler_)) throw_errno("watching the eventfd");
}

loop::~loop() {
    // A connection's end defers its on_closed (and the release of its last reference) to the
    // loop: run those here, or they would be dropped and the connection leaked. On io_uring a
    // connection with requests in flight stays linked after its release until they complete;
    // ending the ring completes them all, and the second pass lets those finish.
    for (int pass = 0; pass < 2; ++pass) {
        std::vector<loop_resource*> all;
        for (loop_resource* r = resources_; r != nullptr; r = r->res_next_)
            all.push_back(r);
        for (loop_resource* r : all) {
            if (r->res_linked_) r->on_loop_destroyed();
        }
        if (pass == 0 && uring_) uring_->exit();
    }
    while (resources_ != nullptr)
        unlink(resources_);  // nothing may be left to call back into a destroyed loop
    for (int round = 0; round < 1000 && !deferred_.empty(); ++round)
        run_deferred();
}

void loop::link(loop_resource* r) noexcept {
    if (r->res_linked_) return;
    r->res_prev_ = nullptr;
    r->res_next_ = resources_;
    if (resources_ != nullptr) resources_->res_prev_ = r;
    resources_ = r;
    r->res_linked_ = true;
}

void loop::unlink(loop_resource* r) noexcept {
    if (!r->res_linked_) return;
    if (r->res_prev_ != nullptr) {
        r->res_prev_->res_next_ = r->res_next_;
    } else {
        resources_ = r->res_next_;
    }
    if (r->res_next_ != nullptr) r->res_next_->res_prev_ = r->res_prev_;
    r->res_prev_ = r->res_next_ = nullptr;
    r->res_linked_ = false;
}

bool loop::in_loop_thread() const noexcept {
    return thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void loop::stop() noexcept {
    stop_.store(true, std::memory_order_release);
    wake();
}

void loop::wake() noexcept {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the loop will wake anyway.
    [[maybe_unused]] const auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void loop::post(std::function<void()> task) {
    bool need_wake = false;
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(task));
        need_wake = !wake_pending_;
        wake_pending_ = true;
    }
    if (need_wake) wake();
}

void loop::wake_handler::on_io(std::uint32_t /*events*/) {
    std::uint64_t value = 0;
    // Reset the counter before taking the queue, so a post racing with us wakes us again.
    [[maybe_unused]] const auto n = ::read(owner->wake_fd_.get(), &value, sizeof value);
    owner->run_posted();
}

void loop::run_posted() {
    {
        std::lock_guard lock(posted_mutex_);
        running_.swap(posted_);
        wake_pending_ = false;
    }
    for (auto& task : running_)
        task();
    running_.clear();
}

void loop::defer(std::function<void()> fn) {
    deferred_.push_back(std::move(fn));
}

void loop::run_deferred() {
    // A deferred task may defer more; bound the rounds so a task that always re-defers cannot
    // starve I/O (the rest waits for the next iteration, whose wait then does not block).
    for (int round = 0; round < 8 && !deferred_.empty(); ++round) {
        deferred_running_.swap(deferred_);
        for (auto& fn : deferred_running_)
            fn();
        deferred_running_.clear();
    }
}

result<void> loop::watch(int fd, std::uint32_t events, io_handler* h) noexcept {
    if (uring_) return uring_->watch(fd, events, h);
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return fail(errno_code(errno));
    return {};
}

result<void> loop::rewatch(int fd, std::uint32_t events, io_handler* h) noexcept {
    if (uring_) return uring_->rewatch(fd, events, h);
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return fail(errno_code(errno));
    return {};
}

void loop::unwatch(int fd) noexcept {
    if (uring_) {
        uring_->unwatch(fd);
        return;
    }
    epoll_event ev{};
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, &ev);
}

timer_id loop::run_at(clock::time_point when, std::function<void()> fn) {
    std::uint32_t slot = 0;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    timer_slot& s = slots_[slot];
    s.fn = std::move(fn);
    s.armed = true;
    if (++s.generation == 0) s.generation = 1;  // id 0 stays "no timer"
    heap_.push_back({when, timer_sequence_++, slot, s.generation});
    std::push_heap(heap_.begin(), heap_.end(), later{});
    ++timers_armed_;
    // Cancelled entries stay in the heap until they surface; rebuild if they dominate it.
    if (heap_.size() > 64 && heap_.size() > 4 * timers_armed_) drop_stale_timers();
    return (static_cast<std::uint64_t>(s.generation) << 32) | slot;
}

bool loop::cancel(timer_id id) noexcept {
    const auto slot = static_cast<std::uint32_t>(id & 0xffffffffU);
    const auto generation = static_cast<std::uint32_t>(id >> 32);
    if (id == 0 || slot >= slots_.size()) return false;
    timer_slot& s = slots_[slot];
    if (!s.armed || s.generation != generation) return false;
    s.armed = false;
    s.fn = nullptr;
    free_slots_.push_back(slot);
    --timers_armed_;
    return true;
}

void loop::drop_stale_timers() noexcept {
    std::erase_if(heap_, [this](const timer_entry& e) {
        const timer_slot& s = slots_[e.slot];
        return !s.armed || s.generation != e.generation;
    });
    std::make_heap(heap_.begin(), heap_.end(), later{});
}

void loop::run_timers() {
    // Only what is due now, and at most what was queued at the start: a timer that re-arms
    // itself for "now" runs in the next iteration instead of looping here forever.
    std::size_t budget = heap_.size();
    while (budget-- > 0 && !heap_.empty() && heap_.front().when <= now_) {
        std::pop_heap(heap_.begin(), heap_.end(), later{});
        const timer_entry e = heap_.back();
        heap_.pop_back();
        timer_slot& s = slots_[e.slot];
        if (!s.armed || s.generation != e.generation) continue;
        auto fn = std::move(s.fn);
        s.fn = nullptr;
        s.armed = false;
        free_slots_.push_back(e.slot);
        --timers_armed_;
        fn();
    }
}

int loop::next_wait_ms() {
    if (!deferred_.empty()) return 0;
    while (!heap_.empty()) {
        const timer_entry& e = heap_.front();
        const timer_slot& s = slots_[e.slot];
        if (s.armed && s.generation == e.generation) break;
        std::pop_heap(heap_.begin(), heap_.end(), later{});
        heap_.pop_back();
    }
    if (heap_.empty()) return -1;
    return deadline::at(heap_.front().when).poll_timeout_ms();
}

void loop::run() {
    thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    if (uring_) {
        run_uring();
    } else {
        run_epoll();
    }
    run_deferred();
}

void loop::run_uring() {
    uring_->enable_on_this_thread();
    struct running_guard {
        detail::uring_loop& u;
        explicit running_guard(detail::uring_loop& r) : u(r) { u.set_running(true); }
        ~running_guard() { u.set_running(false); }
        running_guard(const running_guard&) = delete;
        running_guard& operator=(const running_guard&) = delete;
    } guard(*uring_);
    while (!stop_.load(std::memory_order_acquire)) {
        run_deferred();
        uring_->submit_and_wait(next_wait_ms());
        now_ = clock::now();
        uring_->dispatch();
        run_deferred();
        run_timers();
    }
}

void loop::run_epoll() {
    epoll_event events[max_events];
    while (!stop_.load(std::memory_order_acquire)) {
        run_deferred();
        const int n = detail::sys_epoll_wait(epoll_.get(), events, max_events, next_wait_ms());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("epoll_wait");  // EBADF/EINVAL: a bug, not a condition to survive
        }
        now_ = clock::now();
        for (int i = 0; i < n; ++i) {
            static_cast<io_handler*>(events[i].data.ptr)->on_io(events[i].events);
        }
        run_deferred();
        run_timers();
    }
}

result<void> loop::on_signal(int signo, std::function<void(int)> fn) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (const int err = ::pthread_sigmask(SIG_BLOCK, &one, nullptr); err != 0) {
        return fail(errno_code(err));
    }
    sigaddset(&signal_mask_, signo);
    if (!signal_fd_) {
        signal_fd_.reset(::signalfd(-1, &signal_mask_, SFD_NONBLOCK | SFD_CLOEXEC));
        if (!signal_fd_) return fail(errno_code(errno));
        if (auto r = watch(signal_fd_.get(), EPOLLIN, &signal_handler_); !r) {
            signal_fd_.reset();
            return r;
        }
    } else if (::signalfd(signal_fd_.get(), &signal_mask_, 0) < 0) {
        return fail(errno_code(errno));
    }
    signal_fns_[signo] = std::move(fn);
    return {};
}

void loop::signal_handler::on_io(std::uint32_t /*events*/) {
    signalfd_siginfo info[8];
    for (;;) {
        const auto n = ::read(owner->signal_fd_.get(), info, sizeof info);
        if (n <= 0) return;  // EAGAIN: all read
        for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof(signalfd_siginfo); ++i) {
            const int signo = static_cast<int>(info[i].ssi_signo);
            auto it = owner->signal_fns_.find(signo);
            if (it != owner->signal_fns_.end() && it->second) it->second(signo);
        }
    }
}

}  // namespace orderly
