#pragma once
// The io_uring backend of a loop (private to the library). One ring per loop, owned by the thread
// that runs the loop (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them, COOP_TASKRUN
// otherwise); a ring of provided buffers shared by every connection of the loop, for multishot
// recv; and readiness for the loop's other descriptors (the wake-up eventfd, the signalfd,
// io_handlers that asked watch()) through one-shot POLL_ADD re-armed after each event, so that
// they keep epoll's level-triggered contract.
//
// Every request carries a pointer to its target and, in the low 3 bits, what it was (targets are
// 8-byte aligned). A target lives until the request's final completion: the one without
// IORING_CQE_F_MORE.

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "orderly/event/loop.hpp"

namespace orderly::detail {

// `target` must be the uring_target subobject itself (static_cast first), or the pointer that
// comes back would not be one.
inline std::uint64_t uring_tag(const void* target, uring_op op) noexcept {
    return reinterpret_cast<std::uintptr_t>(target) | static_cast<std::uint64_t>(op);
}

// What the probe found: can io_uring run here, and if not, why.
struct uring_support {
    bool usable = false;
    std::string reason;  // why not (or which setup flags it fell back from)
};
// Probes once per process (ring setup, every opcode needed, a buffer ring and a multishot recv on
// a socketpair) and remembers the answer.
const uring_support& probe_uring();

class uring_loop {
  public:
    struct watch_entry;

    // Throws std::system_error when the ring cannot be set up.
    explicit uring_loop(const loop_options& opts);
    ~uring_loop();
    uring_loop(const uring_loop&) = delete;
    uring_loop& operator=(const uring_loop&) = delete;

    // An SQE for the caller to fill; submits what is queued to make room if the SQ is full.
    io_uring_sqe* sqe() {
        if (ring_ok_) {
            if (io_uring_sqe* s = io_uring_get_sqe(&ring_); s != nullptr) return s;
        }
        return sqe_when_full();
    }
    // Stops one request (by its tag) or every request on a descriptor; the completion of the
    // cancel itself is ignored, the target's request completes with -ECANCELED.
    void cancel(std::uint64_t tag);
    void cancel_fd(int fd);

    // Provided buffers for multishot recv (one group per loop).
    [[nodiscard]] std::uint16_t buffer_group() const noexcept { return 0; }
    [[nodiscard]] std::span<std::byte> buffer(std::uint16_t id, std::size_t len) noexcept {
        return {buffers_.get() + std::size_t{id} * buffer_size_, len};
    }
    // Gives a buffer back to the kernel (made visible once per iteration, before the submit).
    void recycle(std::uint16_t id) noexcept {
        io_uring_buf_ring_add(buf_ring_, buffers_.get() + std::size_t{id} * buffer_size_,
                              static_cast<unsigned>(buffer_size_), id,
                              io_uring_buf_ring_mask(buffer_count_), static_cast<int>(recycled_));
        ++recycled_;
    }

    // Lending: while the bytes of buffer `id` are handed to on_data, a send that writes exactly
    // bytes from inside it may keep the buffer until that send completes, instead of copying
    // them. lend_open() starts the window and returns what it replaces (for lend_close);
    // lend_close() ends it and says whether the buffer was taken (then the sender gives it
    // back with give_back(), else the caller recycles it). At most half the buffers are lent
    // at once, so a peer that does not read cannot starve every recv of buffers.
    struct lend_window {
        std::int32_t id = -1;
        bool taken = false;
        const std::byte* data = nullptr;  // what on_data got: [data, data + len)
        std::size_t len = 0;
    };
    [[nodiscard]] lend_window lend_open(std::uint16_t id, std::size_t len) noexcept {
        const lend_window before = lend_;
        lend_ = {id, false, buffers_.get() + std::size_t{id} * buffer_size_, len};
        return before;
    }
    [[nodiscard]] bool lend_close(lend_window before) noexcept {
        const bool taken = lend_.taken;
        lend_ = before;
        return taken;
    }
    // The buffer `data` lies in, if it can be lent now; -1 if not (copy).
    [[nodiscard]] std::int32_t try_lend(std::span<const std::byte> data) noexcept {
        // Unsigned: bytes before the window wrap round to a huge offset. No window (or one
        // already taken) has len 0, and data is never empty here (write() returns first).
        const auto at = reinterpret_cast<std::uintptr_t>(data.data()) -
                        reinterpret_cast<std::uintptr_t>(lend_.data);
        if (at > lend_.len || data.size() > lend_.len - at || lent_ >= lend_limit_) return -1;
        lend_.len = 0;  // one send per buffer
        lend_.taken = true;
        ++lent_;
        return lend_.id;
    }
    // A lent buffer's send completed: back to the kernel (nothing to do once the ring is gone).
    void give_back(std::int32_t id) noexcept {
        --lent_;
        if (ring_ok_) recycle(static_cast<std::uint16_t>(id));
    }

    // watch()/rewatch()/unwatch() of the loop on this backend.
    result<void> watch(int fd, std::uint32_t events, io_handler* h);
    result<void> rewatch(int fd, std::uint32_t events, io_handler* h);
    void unwatch(int fd) noexcept;

    // One iteration's wait: submit everything queued and wait for at least one completion or
    // `timeout_ms` (-1: no timeout, 0: do not wait). EINTR and ETIME are not errors.
    void submit_and_wait(int timeout_ms);
    // Hands every completion that is in to its target.
    void dispatch();
    // The ring is owned by the thread that calls this first (run()).
    void enable_on_this_thread();
    // Ends the ring: every request still in flight is cancelled by the kernel; no completion
    // arrives after this. For ~loop().
    void exit() noexcept;

    // run() is on the stack (it dispatches the completions).
    void set_running(bool on) noexcept { running_ = on; }
    // For a release after run() returned, on the thread that ran it (the ring's single issuer):
    // submits what is queued and dispatches completions until done() or `limit_ms` passed, so
    // the descriptor is closed now rather than at the next run() or ~loop(). Does nothing inside
    // run() or before the ring was enabled. Returns done().
    bool settle_outside_run(const std::function<bool()>& done, int limit_ms);

    [[nodiscard]] const std::string& setup_note() const noexcept { return note_; }
    // exit() ran: nothing is in flight any more, nothing will complete.
    [[nodiscard]] bool exited() const noexcept { return !ring_ok_; }

  private:
    io_uring_sqe* sqe_when_full();
    void arm_poll(watch_entry& w);
    void flush_recycled() noexcept;

    io_uring ring_{};
    bool ring_ok_ = false;
    bool enabled_ = false;
    bool running_ = false;
    std::string note_;

    io_uring_buf_ring* buf_ring_ = nullptr;
    std::size_t buf_ring_bytes_ = 0;
    std::unique_ptr<std::byte[]> buffers_;
    std::size_t buffer_size_ = 0;
    unsigned buffer_count_ = 0;
    unsigned recycled_ = 0;    // added to the ring since the last advance
    unsigned lent_ = 0;        // buffers held by sends in flight
    unsigned lend_limit_ = 0;  // at most half the pool
    lend_window lend_;

    std::unordered_map<int, watch_entry*> watches_;  // by descriptor: the live watch
    std::vector<std::unique_ptr<watch_entry>> entries_;
    std::vector<watch_entry*> free_entries_;
};

}  // namespace orderly::detail
