// The io_uring backend of the echo client. Per connection: a poll SQE while the connect is in
// progress, then one multishot recv that stays armed (data lands in a ring of provided buffers,
// shared by all connections) and one send SQE per message (MSG_WAITALL: the kernel completes it
// only when the whole message is queued). Every iteration is one io_uring_submit_and_wait: it
// submits what the previous round of completions queued and waits for the next ones.
//
// liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring, so the buffer ring is mmap'ed and
// registered by hand. A recv that ends without IORING_CQE_F_MORE (-ENOBUFS when every buffer is
// in use, or a CQ overflow) is armed again after the round's buffers went back: the data waits
// in the socket, so nothing is lost or reordered.
#include <fmt/format.h>
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "echo_client.hpp"
#include "output.hpp"
#include "pattern.hpp"
#include "sys.hpp"

namespace load {

namespace {

// user_data = connection index << 3 | operation.
enum op : std::uint64_t { op_connect = 0, op_recv = 1, op_send = 2, op_pidfd = 3 };
constexpr std::uint64_t op_mask = 7;
constexpr unsigned buf_group = 0;
// A power of two, and small: the ring hands buffers out in the order they came back, so a large
// pool is always cold (4096 ran W2 10-20 % slower than 256). More connections than buffers in
// one round end some recvs with -ENOBUFS, and those are armed again.
constexpr unsigned n_bufs = 256;

class uring_client final : public echo_client {
  public:
    uring_client(const options& o, bool verify)
        : echo_client(o, verify), buf_size_(o.size <= 4096 ? 4096 : 16384) {}

    ~uring_client() override {
        if (ring_ok_) io_uring_queue_exit(&ring_);  // cancels what is still in the ring
        if (br_) munmap(br_, n_bufs * sizeof(io_uring_buf));
    }
    uring_client(const uring_client&) = delete;
    uring_client& operator=(const uring_client&) = delete;

    bool init() {
        // DEFER_TASKRUN runs completions only when we enter the kernel to wait: no interrupting
        // task work while we handle a batch. It needs SINGLE_ISSUER (one thread: us) and 6.1;
        // COOP_TASKRUN is the 5.19 fallback, plain the last.
        const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                  IORING_SETUP_COOP_TASKRUN, 0};
        const char* names[] = {"SINGLE_ISSUER|DEFER_TASKRUN", "COOP_TASKRUN", "no taskrun flags"};
        int r = -EINVAL;
        for (std::size_t i = 0; i < 3; ++i) {
            io_uring_params p{};
            p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
            p.cq_entries = 16384;  // room for a multishot burst from every connection
            r = io_uring_queue_init_params(4096, &ring_, &p);
            if (r == 0) {
                mode_ = names[i];
                break;
            }
            if (r != -EINVAL) break;
        }
        if (r != 0) {
            set_error(
                fmt::format("io_uring_queue_init: {} (is io_uring disabled here? "
                            "kernel.io_uring_disabled, seccomp): use --client epoll",
                            errstr(-r)));
            return false;
        }
        ring_ok_ = true;
        void* mem = mmap(nullptr, n_bufs * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                         MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED) {
            set_error(fmt::format("mmap of the buffer ring: {}", errstr(errno)));
            return false;
        }
        br_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(br_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
        reg.ring_entries = n_bufs;
        reg.bgid = buf_group;
        r = io_uring_register_buf_ring(&ring_, &reg, 0);
        if (r != 0) {
            set_error(fmt::format("io_uring_register_buf_ring: {} (needs Linux 5.19)", errstr(-r)));
            return false;
        }
        bufs_.reset(new char[std::size_t{n_bufs} * buf_size_]);
        for (unsigned i = 0; i < n_bufs; ++i)
            give_back(static_cast<std::uint16_t>(i));
        flush_buffers();
        return true;
    }

    bool poll_once(int timeout_ms) override {
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) {
            set_error(fmt::format("io_uring_submit_and_wait: {}", errstr(-r)));
        }
        bool fired = false;
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            fired |= handle(*cqe);
        }
        io_uring_cq_advance(&ring_, seen);
        flush_buffers();
        // Buffers are back: recvs that ran out of them may go again, in the next submit.
        for (std::uint64_t i : rearm_) {
            econn& c = conns_[i];
            c.in_rearm = false;
            if (c.st != cstate::ended && !c.recv_armed) start_receiving(c);
        }
        rearm_.clear();
        return fired;
    }

    void watch_pidfd(int pidfd) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_add(s, pidfd, POLLIN);
        io_uring_sqe_set_data64(s, op_pidfd);
    }

    [[nodiscard]] std::string describe() const override { return fmt::format("uring, {}", mode_); }

  private:
    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (!s) {
            // The SQ is full (thousands of connects in one round): submit early, once.
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        if (!s) {
            set_error("io_uring: no SQE free after a submit");
            static io_uring_sqe dummy;  // keeps callers simple; the run is failed already
            return &dummy;
        }
        return s;
    }

    void watch_connect(econn& c) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_add(s, c.fd, POLLOUT);
        io_uring_sqe_set_data64(s, index(c) << 3 | op_connect);
    }

    void start_receiving(econn& c) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = buf_group;
        io_uring_sqe_set_data64(s, index(c) << 3 | op_recv);
        c.recv_armed = true;
    }

    void transmit(econn& c) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, the_pattern().at(c.sent), c.unsent, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(s, index(c) << 3 | op_send);
        c.in_flight = c.unsent;
        c.sent += c.unsent;
    }

    bool handle(const io_uring_cqe& cqe) {
        std::uint64_t ud = io_uring_cqe_get_data64(&cqe);
        if ((ud & op_mask) == op_pidfd) return true;
        econn& c = conns_[ud >> 3];
        switch (ud & op_mask) {
            case op_connect:
                if (c.st == cstate::connecting) on_connected(c);
                break;
            case op_send:
                on_sent(c, cqe.res);
                break;
            case op_recv:
                on_recv(c, cqe);
                break;
            default:
                break;
        }
        return false;
    }

    void on_sent(econn& c, int res) {
        std::uint32_t asked = c.in_flight;
        c.in_flight = 0;
        if (res < 0) {
            c.sent -= asked;  // nothing of it went out
            return fail(c, -res);
        }
        auto took = static_cast<std::uint32_t>(res);
        c.unsent -= took;
        if (took < asked) {
            // MSG_WAITALL makes this rare (a signal); send the rest.
            c.sent -= asked - took;
            if (c.st != cstate::ended) transmit(c);
            return;
        }
        maybe_complete(c);
    }

    void on_recv(econn& c, const io_uring_cqe& cqe) {
        if (!(cqe.flags & IORING_CQE_F_MORE)) c.recv_armed = false;
        if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
            auto bid = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
            on_data(c, bufs_.get() + std::size_t{bid} * buf_size_,
                    static_cast<std::size_t>(cqe.res));
            give_back(bid);
        } else if (cqe.res == 0) {
            on_eof(c);
        } else if (cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
            fail(c, -cqe.res);
        }
        if (!c.recv_armed && c.st != cstate::ended && !c.in_rearm) {
            c.in_rearm = true;
            rearm_.push_back(index(c));
        }
    }

    void give_back(std::uint16_t bid) {
        io_uring_buf_ring_add(br_, bufs_.get() + std::size_t{bid} * buf_size_, buf_size_, bid,
                              io_uring_buf_ring_mask(n_bufs), returned_++);
    }

    void flush_buffers() {
        if (returned_ == 0) return;
        io_uring_buf_ring_advance(br_, returned_);
        returned_ = 0;
    }

    io_uring ring_{};
    bool ring_ok_ = false;
    const char* mode_ = "";
    io_uring_buf_ring* br_ = nullptr;
    const unsigned buf_size_;
    std::unique_ptr<char[]> bufs_;
    int returned_ = 0;  // buffers added to the ring since the last advance
    std::vector<std::uint64_t> rearm_;
};

}  // namespace

std::unique_ptr<echo_client> make_uring_client(const options& o, bool verify) {
    auto c = std::make_unique<uring_client>(o, verify);
    if (!c->init()) return nullptr;
    return c;
}

}  // namespace load
