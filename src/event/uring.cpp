#include "uring.hpp"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <system_error>
#include <thread>

#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly::detail {

struct uring_loop::watch_entry {
    io_handler* handler = nullptr;
    int fd = -1;
    std::uint32_t events = 0;
    bool live = false;        // watched (not unwatched yet)
    bool armed = false;       // a POLL_ADD is in flight
    bool in_handler = false;  // its handler is running now
};

namespace {

// What setup tries first, then falls back from, in order.
constexpr unsigned preferred_flags[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};

std::string flags_name(unsigned f) {
    if (f == (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)) {
        return "SINGLE_ISSUER|DEFER_TASKRUN";
    }
    if (f == IORING_SETUP_COOP_TASKRUN) return "COOP_TASKRUN";
    return "no task-run flags";
}

std::string errno_text(int err) {
    return std::error_code(err, std::system_category()).message();
}

// Sets a ring up with the best flags the kernel takes; returns the flags used, or -errno.
int setup_ring(io_uring& ring, unsigned entries, unsigned cq_entries, unsigned extra) {
    int last = -EINVAL;
    for (unsigned f : preferred_flags) {
        io_uring_params p{};
        p.flags = f | extra;
        if (cq_entries != 0) {
            p.flags |= IORING_SETUP_CQSIZE;
            p.cq_entries = cq_entries;
        }
        last = io_uring_queue_init_params(entries, &ring, &p);
        if (last == 0) return static_cast<int>(f);
        if (last != -EINVAL) return last;  // EPERM, ENOMEM, ENOSYS: no flag will help
    }
    return last;
}

std::string sysctl_hint() {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    int v = 0;
    if (in >> v && v != 0) return " (kernel.io_uring_disabled=" + std::to_string(v) + ")";
    return {};
}

// A buffer ring of `count` entries (a power of two), mapped by hand: liburing 2.3 has no
// io_uring_setup_buf_ring.
io_uring_buf_ring* map_buf_ring(unsigned count, std::size_t& bytes) {
    bytes = std::size_t{count} * sizeof(io_uring_buf);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<io_uring_buf_ring*>(p);
}

int register_buf_ring(io_uring& ring, io_uring_buf_ring* br, unsigned count, std::uint16_t group) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(br);
    reg.ring_entries = count;
    reg.bgid = group;
    return io_uring_register_buf_ring(&ring, &reg, 0);
}

uring_support run_probe() {
    uring_support out;
    io_uring ring{};
    const int flags = setup_ring(ring, 8, 0, 0);
    if (flags < 0) {
        out.reason = "io_uring_setup failed: " + errno_text(-flags) + sysctl_hint();
        return out;
    }
    struct ring_guard {
        io_uring* r;
        ~ring_guard() { io_uring_queue_exit(r); }
    } guard{&ring};
    if (flags != static_cast<int>(preferred_flags[0]))
        out.reason = flags_name(static_cast<unsigned>(flags));
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    if (probe == nullptr) {
        out.reason = "the kernel cannot list its io_uring opcodes (too old)";
        return out;
    }
    const std::pair<int, const char*> needed[] = {
        {IORING_OP_RECV, "RECV"},
        {IORING_OP_SEND, "SEND"},
        {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_POLL_REMOVE, "POLL_REMOVE"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    };
    for (const auto& [op, name] : needed) {
        if (!io_uring_opcode_supported(probe, op)) {
            io_uring_free_probe(probe);
            out.reason = std::string("the kernel lacks IORING_OP_") + name;
            return out;
        }
    }
    io_uring_free_probe(probe);
    // A buffer ring (5.19) and a multishot recv into it (6.0), on a socketpair.
    std::size_t bytes = 0;
    io_uring_buf_ring* br = map_buf_ring(8, bytes);
    if (br == nullptr) {
        out.reason = "mmap for a buffer ring failed";
        return out;
    }
    struct map_guard {
        void* p;
        std::size_t n;
        ~map_guard() { ::munmap(p, n); }
    } mguard{br, bytes};
    if (const int r = register_buf_ring(ring, br, 8, 0); r != 0) {
        out.reason = "no provided-buffer rings (kernel < 5.19?): " + errno_text(-r);
        return out;
    }
    char bufs[8][64];
    io_uring_buf_ring_init(br);
    for (unsigned i = 0; i < 8; ++i)
        io_uring_buf_ring_add(br, bufs[i], sizeof bufs[i], static_cast<unsigned short>(i), 7,
                              static_cast<int>(i));
    io_uring_buf_ring_advance(br, 8);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        out.reason = "socketpair for the probe failed: " + errno_text(errno);
        return out;
    }
    unique_fd a(sv[0]);
    unique_fd b(sv[1]);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, a.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    sqe->user_data = 1;
    (void)::write(b.get(), "x", 1);
    __kernel_timespec ts{1, 0};
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
    if (r < 0 || cqe == nullptr) {
        out.reason = "multishot recv did not complete: " + errno_text(r < 0 ? -r : ETIME);
        return out;
    }
    const bool ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) != 0 &&
                    (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    // End the multishot before the ring goes, so nothing is left for the ring's teardown.
    if (io_uring_sqe* c = io_uring_get_sqe(&ring); c != nullptr) {
        io_uring_prep_cancel64(c, 1, 0);
        c->user_data = 2;
        io_uring_cqe* done = nullptr;
        for (int i = 0;
             i < 2 && io_uring_submit_and_wait_timeout(&ring, &done, 1, &ts, nullptr) == 0; ++i) {
            io_uring_cqe_seen(&ring, done);
        }
    }
    if (!ok) {
        out.reason = "multishot recv is not supported (kernel < 6.0?): res " + std::to_string(res);
        return out;
    }
    out.usable = true;
    return out;
}

}  // namespace

const uring_support& probe_uring() {
    // On a thread of its own: io_uring delivers a request's completion work to the thread that
    // submitted it, and that notification makes the thread's blocking calls with a timeout
    // (SO_RCVTIMEO, poll) fail with EINTR. The caller's thread must not get any.
    static const uring_support support = [] {
        uring_support s;
        std::thread([&s] { s = run_probe(); }).join();
        return s;
    }();
    return support;
}

uring_loop::uring_loop(const loop_options& opts) {
    if (const auto& probe = probe_uring(); !probe.usable) {
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "io_uring backend not usable: " + probe.reason);
    }
    const unsigned entries = std::max(8U, opts.uring_entries);
    // R_DISABLED: the ring is owned by the thread that runs the loop, which is often not the one
    // that builds it (a server starts its loops' threads after making them).
    const int flags = setup_ring(ring_, entries, entries * 8, IORING_SETUP_R_DISABLED);
    if (flags < 0) {
        throw std::system_error(-flags, std::system_category(), "io_uring_setup");
    }
    ring_ok_ = true;
    if (flags != static_cast<int>(preferred_flags[0]))
        note_ = flags_name(static_cast<unsigned>(flags));
    buffer_count_ = opts.uring_buffers;
    if (buffer_count_ < 8 || (buffer_count_ & (buffer_count_ - 1)) != 0 || buffer_count_ > 32768) {
        io_uring_queue_exit(&ring_);
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "loop_options::uring_buffers must be a power of two in 8..32768");
    }
    buffer_size_ = std::max<std::size_t>(512, opts.uring_buffer_size);
    lend_limit_ = buffer_count_ / 2;
    buf_ring_ = map_buf_ring(buffer_count_, buf_ring_bytes_);
    if (buf_ring_ == nullptr) {
        io_uring_queue_exit(&ring_);
        throw std::system_error(errno, std::system_category(), "mmap for the buffer ring");
    }
    if (const int r = register_buf_ring(ring_, buf_ring_, buffer_count_, buffer_group()); r != 0) {
        ::munmap(buf_ring_, buf_ring_bytes_);
        io_uring_queue_exit(&ring_);
        throw std::system_error(-r, std::system_category(), "io_uring_register_buf_ring");
    }
    // Not value-initialised: a page costs memory only once the kernel has read into it.
    buffers_ = std::make_unique_for_overwrite<std::byte[]>(buffer_size_ * buffer_count_);
    io_uring_buf_ring_init(buf_ring_);
    for (unsigned i = 0; i < buffer_count_; ++i) {
        io_uring_buf_ring_add(buf_ring_, buffers_.get() + i * buffer_size_,
                              static_cast<unsigned>(buffer_size_), static_cast<unsigned short>(i),
                              io_uring_buf_ring_mask(buffer_count_), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(buffer_count_));
}

uring_loop::~uring_loop() {
    exit();
}

void uring_loop::exit() noexcept {
    if (!ring_ok_) return;
    io_uring_queue_exit(&ring_);
    ring_ok_ = false;
    if (buf_ring_ != nullptr) {
        ::munmap(buf_ring_, buf_ring_bytes_);
        buf_ring_ = nullptr;
    }
}

void uring_loop::enable_on_this_thread() {
    if (enabled_ || !ring_ok_) return;
    // io_uring_register(ENABLE_RINGS) directly: Debian's liburing 2.3 shared library does not
    // export io_uring_enable_rings (its symbol map misses it).
    if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                  0) != 0) {
        throw std::system_error(errno, std::system_category(), "io_uring_register(ENABLE_RINGS)");
    }
    enabled_ = true;
}

io_uring_sqe* uring_loop::sqe_when_full() {
    if (!ring_ok_ || !enabled_) return nullptr;
    // The submission queue is full: hand what is queued to the kernel to make room.
    (void)io_uring_submit(&ring_);
    return io_uring_get_sqe(&ring_);
}

void uring_loop::cancel(std::uint64_t tag) {
    io_uring_sqe* s = sqe();
    if (s == nullptr) return;
    io_uring_prep_cancel64(s, tag, 0);
    s->user_data = uring_tag(nullptr, uring_op::cancel);
}

void uring_loop::cancel_fd(int fd) {
    io_uring_sqe* s = sqe();
    if (s == nullptr) return;
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    s->user_data = uring_tag(nullptr, uring_op::cancel);
}

void uring_loop::flush_recycled() noexcept {
    if (recycled_ == 0 || buf_ring_ == nullptr) return;
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(recycled_));
    recycled_ = 0;
}

void uring_loop::arm_poll(watch_entry& w) {
    io_uring_sqe* s = sqe();
    if (s == nullptr) return;
    // EPOLLEXCLUSIVE is epoll's; a poll request has nothing like it (and needs nothing).
    io_uring_prep_poll_add(s, w.fd, w.events & ~static_cast<std::uint32_t>(EPOLLEXCLUSIVE));
    s->user_data = uring_tag(&w, uring_op::poll);
    w.armed = true;
}

result<void> uring_loop::watch(int fd, std::uint32_t events, io_handler* h) {
    if (watches_.count(fd) != 0) return fail(errno_code(EEXIST));
    watch_entry* w = nullptr;
    if (!free_entries_.empty()) {
        w = free_entries_.back();
        free_entries_.pop_back();
    } else {
        entries_.push_back(std::make_unique<watch_entry>());
        w = entries_.back().get();
    }
    *w = watch_entry{};
    w->handler = h;
    w->fd = fd;
    w->events = events;
    w->live = true;
    watches_[fd] = w;
    arm_poll(*w);
    if (!w->armed) {
        watches_.erase(fd);
        w->live = false;
        free_entries_.push_back(w);
        return fail(errno_code(EBUSY));
    }
    return {};
}

result<void> uring_loop::rewatch(int fd, std::uint32_t events, io_handler* h) {
    auto it = watches_.find(fd);
    if (it == watches_.end()) return fail(errno_code(ENOENT));
    watch_entry& w = *it->second;
    w.handler = h;
    if (w.events == events) return {};
    w.events = events;
    if (w.armed) {
        // Change the armed poll in place; if it has already fired, its completion re-arms with
        // the new events.
        io_uring_sqe* s = sqe();
        if (s != nullptr) {
            io_uring_prep_poll_update(
                s, uring_tag(&w, uring_op::poll), uring_tag(&w, uring_op::poll),
                events & ~static_cast<std::uint32_t>(EPOLLEXCLUSIVE), IORING_POLL_UPDATE_EVENTS);
            s->user_data = uring_tag(nullptr, uring_op::cancel);
        }
    }
    return {};
}

void uring_loop::unwatch(int fd) noexcept {
    auto it = watches_.find(fd);
    if (it == watches_.end()) return;
    watch_entry* w = it->second;
    watches_.erase(it);
    w->live = false;
    if (w->armed) {
        if (io_uring_sqe* s = sqe(); s != nullptr) {
            io_uring_prep_poll_remove(s, uring_tag(w, uring_op::poll));
            s->user_data = uring_tag(nullptr, uring_op::cancel);
        }
        return;  // freed by the poll's final completion
    }
    if (!w->in_handler) free_entries_.push_back(w);
}

void uring_loop::submit_and_wait(int timeout_ms) {
    flush_recycled();
    int r = 0;
    if (timeout_ms == 0) {
        r = io_uring_submit_and_get_events(&ring_);
    } else if (timeout_ms < 0) {
        r = io_uring_submit_and_wait(&ring_, 1);
    } else {
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
        io_uring_cqe* cqe = nullptr;
        r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY) {
        throw std::system_error(-r, std::system_category(), "io_uring_enter");
    }
}

bool uring_loop::settle_outside_run(const std::function<bool()>& done, int limit_ms) {
    if (running_ || !enabled_ || !ring_ok_) return done();
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
    while (!done() && std::chrono::steady_clock::now() < until) {
        submit_and_wait(10);
        dispatch();
    }
    return done();
}

void uring_loop::dispatch() {
    // What is in now; what completes while these are handled is for the next iteration (whose
    // wait returns at once then). The ring has no CQE32, so an entry is cqes[head & mask].
    unsigned head = *ring_.cq.khead;
    const unsigned tail = io_uring_smp_load_acquire(ring_.cq.ktail);
    const unsigned mask = ring_.cq.ring_mask;
    const unsigned seen = tail - head;
    for (; head != tail; ++head) {
        const io_uring_cqe* cqe = &ring_.cq.cqes[head & mask];
        const std::uint64_t ud = cqe->user_data;
        const auto op = static_cast<uring_op>(ud & 7U);
        void* target = reinterpret_cast<void*>(static_cast<std::uintptr_t>(ud & ~std::uint64_t{7}));
        const int res = cqe->res;
        const std::uint32_t flags = cqe->flags;
        switch (op) {
            case uring_op::cancel:
                break;
            case uring_op::poll: {
                auto* w = static_cast<watch_entry*>(target);
                w->armed = false;
                if (w->live) {
                    // A failed poll (the descriptor was closed while watched: a bug of the
                    // caller's) is reported as an error once and not re-armed.
                    w->in_handler = true;
                    w->handler->on_io(res >= 0 ? static_cast<std::uint32_t>(res)
                                               : static_cast<std::uint32_t>(EPOLLERR));
                    w->in_handler = false;
                }
                if (w->live && !w->armed && res >= 0) {
                    arm_poll(*w);  // one-shot poll, re-armed: level-triggered like epoll
                } else if (!w->live && !w->armed) {
                    free_entries_.push_back(w);
                }
                break;
            }
            default:
                static_cast<uring_target*>(target)->on_completion(op, res, flags);
                break;
        }
    }
    io_uring_cq_advance(&ring_, seen);
    flush_recycled();
}

}  // namespace orderly::detail
