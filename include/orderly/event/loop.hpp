#pragma once
// loop: one thread's event loop — epoll readiness, timers, tasks posted from other threads (woken
// through an eventfd) and signals (through a signalfd). Every callback runs on the thread inside
// run(); only post() and stop() may be called from other threads.
//
// Level-triggered epoll, on purpose. With level triggering a read that returned less than the
// buffer size has (almost certainly) emptied the socket, so we can go back to epoll_wait without
// the extra recv() that edge triggering needs to see EAGAIN; if more arrived meanwhile, the level
// is still high and epoll reports it again. It also makes pausing a direction a plain interest
// change, with no risk of losing an edge. The price, an epoll_ctl to arm EPOLLOUT, is paid only
// when a write could not be sent at once (the output buffer is non-empty), which is the rare case.

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly {

namespace detail {
class uring_loop;

// Internal to the library's io_uring backend: what a request was for (the low 3 bits of its
// user_data, next to an 8-byte-aligned pointer to its target), and who gets its completions.
enum class uring_op : std::uint8_t {
    poll = 0,           // a watch()ed descriptor
    recv = 1,           // a connection's multishot recv
    send = 2,           // a connection's send
    accept = 3,         // a server loop's multishot accept
    cancel = 4,         // an ASYNC_CANCEL, POLL_REMOVE or poll update: its completion is ignored
    hangup = 5,         // a connection's poll for POLLERR/POLLHUP while no recv is armed
    accept_cancel = 6,  // the cancel of a server loop's multishot accept
};
class uring_target {
  public:
    // res and flags as in the CQE. A target lives until its requests' final completions.
    virtual void on_completion(uring_op op, int res, std::uint32_t flags) = 0;

  protected:
    uring_target() = default;
    uring_target(const uring_target&) = default;
    uring_target& operator=(const uring_target&) = default;
    ~uring_target() = default;
};
}  // namespace detail

// How a loop waits for the kernel. Same behaviour on both: the choice is about speed and about
// what the system allows.
enum class loop_backend : std::uint8_t {
    automatic,  // ORDERLY_BACKEND from the environment if set, else io_uring when usable, else
                // epoll
    epoll,      // readiness (level-triggered), then recv/send syscalls
    io_uring,   // completions: multishot accept and recv with provided buffers, sends as SQEs
};
std::string_view to_string(loop_backend b) noexcept;

struct loop_options {
    loop_backend backend = loop_backend::automatic;
    // io_uring: submission queue entries (the completion queue gets 8 times as many, for
    // multishot bursts) and the provided buffers that every connection of the loop reads into.
    unsigned uring_entries = 512;
    unsigned uring_buffers = 1024;          // a power of two
    std::size_t uring_buffer_size = 16384;  // bytes per buffer
};

// What loop_backend::automatic picks on this machine, and why (e.g. "io_uring" or "epoll:
// io_uring_setup failed: Operation not permitted (kernel.io_uring_disabled=2?)"). Probed once per
// process, cheap afterwards. ORDERLY_BACKEND=epoll|io_uring overrides it.
loop_backend automatic_backend() noexcept;
const std::string& automatic_backend_reason();

// Receives readiness for one watched descriptor. A virtual call instead of a std::function so the
// hot path neither allocates nor copies. A handler must stay alive until the end of the batch in
// which it was unwatched (destroy it from a defer()red task).
class io_handler {
  public:
    // Called on the loop's thread with the epoll bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP).
    virtual void on_io(std::uint32_t events) = 0;

  protected:
    io_handler() = default;
    io_handler(const io_handler&) = default;
    io_handler& operator=(const io_handler&) = default;
    ~io_handler() = default;
};

// Something a loop must end if the loop is destroyed first (a connection): linked into the loop
// while alive, so that ~loop() can release it with a report instead of leaking it.
class loop_resource {
  public:
    // Called by ~loop() for each resource still linked, on the destroying thread: release now,
    // without blocking. Callbacks it defers run before ~loop() returns.
    virtual void on_loop_destroyed() noexcept = 0;

  protected:
    loop_resource() = default;
    loop_resource(const loop_resource&) = delete;
    loop_resource& operator=(const loop_resource&) = delete;
    ~loop_resource() = default;

  private:
    friend class loop;
    loop_resource* res_prev_ = nullptr;
    loop_resource* res_next_ = nullptr;
    bool res_linked_ = false;
};

// Names one armed timer; 0 is never a valid id.
using timer_id = std::uint64_t;

class loop {
  public:
    // Creates the backend (epoll descriptor or io_uring ring) and the wake-up eventfd. Throws
    // std::system_error when the kernel refuses (EMFILE, ENOMEM, io_uring asked for explicitly
    // but not usable): construction is not a hot path and a loop without them is useless.
    loop();
    explicit loop(const loop_options& opts);
    // Ends every connection still open on it (plain close, method `destructor`, on_closed once
    // each), then runs every deferred task, so nothing it served leaks. Call it on the thread
    // that ran it (or any thread once run() has returned).
    ~loop();
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;

    // Runs callbacks on the calling thread until stop(). Returns at once if stop() came first.
    // Blocks in epoll_wait (or io_uring_enter) between batches; EINTR is retried.
    void run();
    [[nodiscard]] loop_backend backend() const noexcept { return backend_; }
    // Thread-safe, idempotent and sticky: run() returns after the batch it is in.
    void stop() noexcept;
    [[nodiscard]] bool stopped() const noexcept { return stop_.load(std::memory_order_acquire); }
    // True on the thread inside run() (or on the constructing thread before run()).
    [[nodiscard]] bool in_loop_thread() const noexcept;

    // Thread-safe: queues `task` to run on the loop's thread, in FIFO order, and wakes the loop
    // (one eventfd write per batch of posts, not per post).
    void post(std::function<void()> task);

    // --- Loop thread only from here on. ---

    // Adds / changes / removes epoll interest (epoll_ctl ADD / MOD / DEL). Errors: the errno.
    result<void> watch(int fd, std::uint32_t events, io_handler* h) noexcept;
    result<void> rewatch(int fd, std::uint32_t events, io_handler* h) noexcept;
    void unwatch(int fd) noexcept;

    // One-shot timers on the monotonic clock; cancel() is O(1) (the heap entry is skipped later).
    timer_id run_at(clock::time_point when, std::function<void()> fn);
    timer_id run_after(clock::duration d, std::function<void()> fn) {
        return run_at(clock::now() + d, std::move(fn));
    }
    // True when the timer was armed and has now been cancelled; false if it already ran.
    bool cancel(timer_id id) noexcept;

    // Runs `fn` after every callback of the current batch has returned, before the next wait.
    // Used to destroy objects that a later event of the same batch may still point to.
    void defer(std::function<void()> fn);

    // Routes `signo` to `fn` through a signalfd. Blocks `signo` in the calling thread (threads
    // started afterwards inherit the mask); a process-directed signal reaches the signalfd only if
    // every other thread blocks it as well. Errors: the errno of signalfd/pthread_sigmask.
    result<void> on_signal(int signo, std::function<void(int)> fn);

    // The time taken after the last epoll_wait returned: cheap, and precise enough for timeouts.
    [[nodiscard]] clock::time_point now() const noexcept { return now_; }

    // Scratch space for reads, shared by every connection of this loop: data is handed to the
    // application straight from here, so reading never allocates.
    [[nodiscard]] std::span<std::byte> read_buffer() noexcept { return read_buffer_; }

    // Links / unlinks a resource that ~loop() must end (loop thread). Idempotent.
    void link(loop_resource* r) noexcept;
    void unlink(loop_resource* r) noexcept;

    // Armed timers (for tests and diagnostics).
    [[nodiscard]] std::size_t timer_count() const noexcept { return timers_armed_; }

    // The library's own io_uring code (connections, the server's acceptor) reaches the ring
    // here; nullptr on the epoll backend.
    [[nodiscard]] detail::uring_loop* uring() noexcept { return uring_.get(); }

  private:
    struct wake_handler final : io_handler {
        loop* owner = nullptr;
        void on_io(std::uint32_t events) override;
    };
    struct signal_handler final : io_handler {
        loop* owner = nullptr;
        void on_io(std::uint32_t events) override;
    };
    struct timer_slot {
        std::function<void()> fn;
        std::uint32_t generation = 0;
        bool armed = false;
    };
    struct timer_entry {
        clock::time_point when;
        std::uint64_t sequence;  // FIFO among equal deadlines
        std::uint32_t slot;
        std::uint32_t generation;
    };

    friend class detail::uring_loop;
    void wake() noexcept;
    void run_epoll();
    void run_uring();
    void run_posted();
    void run_deferred();
    void run_timers();
    void drop_stale_timers() noexcept;
    [[nodiscard]] int next_wait_ms();

    loop_backend backend_ = loop_backend::epoll;
    unique_fd epoll_;
    std::unique_ptr<detail::uring_loop> uring_;
    unique_fd wake_fd_;
    unique_fd signal_fd_;
    wake_handler wake_handler_;
    signal_handler signal_handler_;
    std::atomic<bool> stop_{false};
    std::atomic<std::thread::id> thread_;
    clock::time_point now_ = clock::now();

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;   // guarded by posted_mutex_
    bool wake_pending_ = false;                   // guarded by posted_mutex_
    std::vector<std::function<void()>> running_;  // loop thread: the batch being run

    std::vector<std::function<void()>> deferred_;
    std::vector<std::function<void()>> deferred_running_;

    std::vector<timer_slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::vector<timer_entry> heap_;
    std::uint64_t timer_sequence_ = 0;
    std::size_t timers_armed_ = 0;

    sigset_t signal_mask_{};
    std::map<int, std::function<void(int)>> signal_fns_;

    std::vector<std::byte> read_buffer_;
    loop_resource* resources_ = nullptr;
};

}  // namespace orderly
