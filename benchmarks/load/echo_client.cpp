#include "echo_client.hpp"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "output.hpp"
#include "pattern.hpp"
#include "sys.hpp"

namespace load {

echo_client::echo_client(const options& o, bool verify) : o_(o), msg_(o.size), verify_(verify) {}

echo_client::~echo_client() {
    for (auto& c : conns_) {
        if (c.fd >= 0) close(c.fd);
    }
}

void echo_client::open_more(std::size_t total, std::size_t max_pending) {
    if (conns_.capacity() < total) conns_.reserve(total);
    while (opened < total && pending < max_pending) {
        int fd = start_connect(o_.addr, nullptr);
        ++opened;
        conns_.emplace_back();
        econn& c = conns_.back();
        if (fd < 0) {
            note_connect_failure(-fd);
            c.setting_up = false;
            c.st = cstate::ended;
            c.end = cend::failed;
            continue;
        }
        c.fd = fd;
        ++pending;
        ++open_now;
        watch_connect(c);
    }
}

void echo_client::note_connect_failure(int err) {
    ++connect_failures;
    if (first_failure.empty()) first_failure = fmt::format("connect: {}", errstr(err));
}

void echo_client::finish(econn& c, cend how) {
    if (c.setting_up) {
        c.setting_up = false;
        --pending;
    }
    c.st = cstate::ended;
    c.end = how;
    close(c.fd);  // epoll: also leaves the set; uring: requests still in the ring end on their own
    c.fd = -1;
    --open_now;
}

void echo_client::fail(econn& c, int err) {
    if (c.st == cstate::ended) return;
    if (is_reset(err)) {
        ++resets;
        finish(c, cend::reset);
    } else {
        ++other_errors;
        if (first_failure.empty()) first_failure = fmt::format("socket: {}", errstr(err));
        finish(c, cend::failed);
    }
}

void echo_client::on_connected(econn& c) {
    int err = socket_error(c.fd);
    if (err != 0) {
        note_connect_failure(err);
        finish(c, cend::failed);
        return;
    }
    set_nodelay(c.fd);
    c.st = cstate::active;
    start_receiving(c);
    send_message(c);
}

void echo_client::send_message(econn& c) {
    if (samples) c.t_send = now_ns();
    c.unsent = static_cast<std::uint32_t>(msg_);
    transmit(c);
}

void echo_client::on_data(econn& c, const char* data, std::size_t n) {
    if (c.st == cstate::ended) return;
    auto got = static_cast<std::uint64_t>(n);
    if (c.received + got > c.sent || (verify_ && !the_pattern().matches(c.received, data, n))) {
        ++corrupt;
        c.received += got;
        return;
    }
    c.received += got;
    maybe_complete(c);
}

void echo_client::maybe_complete(econn& c) {
    if (c.st != cstate::active || c.received != c.sent || c.unsent != 0) return;
    ++messages;
    if (samples && samples->size() < max_samples) samples->push_back(now_ns() - c.t_send);
    if (c.setting_up) {
        c.setting_up = false;
        --pending;
        ++established;
    }
    if (keep_pinging) {
        send_message(c);
    } else {
        c.st = cstate::idle;
    }
}

void echo_client::on_eof(econn& c) {
    if (c.st == cstate::ended) return;
    ++eofs;
    if (close_on_eof) {
        // The server said it is done: stop sending, say we are done too, release.
        shutdown(c.fd, SHUT_WR);
    }
    finish(c, cend::eof);
}

// ---------------------------------------------------------------------------------------------
// The epoll backend: level-triggered EPOLLIN; EPOLLOUT only while the kernel pushes back.

namespace {

constexpr std::uint64_t pidfd_tag = ~std::uint64_t{0};

class epoll_client final : public echo_client {
  public:
    epoll_client(const options& o, bool verify)
        : echo_client(o, verify), rbuf_(std::size_t{256} * 1024) {}

    bool poll_once(int timeout_ms) override {
        bool pid_exited = false;
        int n = ep_.wait(timeout_ms);
        for (int i = 0; i < n; ++i) {
            const epoll_event& e = ep_.event(i);
            if (e.data.u64 == pidfd_tag) {
                pid_exited = true;
                continue;
            }
            handle(conns_[e.data.u64], e.events);
        }
        return pid_exited;
    }

    void watch_pidfd(int pidfd) override { ep_.add(pidfd, EPOLLIN, pidfd_tag); }

    [[nodiscard]] std::string describe() const override { return "epoll"; }

  private:
    void watch_connect(econn& c) override { ep_.add(c.fd, EPOLLOUT | EPOLLIN, index(c)); }

    void start_receiving(econn& c) override { ep_.mod(c.fd, EPOLLIN, index(c)); }

    // Writes what is left of the current message; arms EPOLLOUT only when the kernel pushed back.
    void transmit(econn& c) override {
        ssize_t n = send(c.fd, the_pattern().at(c.sent), c.unsent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) return fail(c, errno);
            n = 0;
        }
        c.sent += static_cast<std::uint64_t>(n);
        c.unsent -= static_cast<std::uint32_t>(n);
        if (c.unsent > 0) ep_.mod(c.fd, EPOLLIN | EPOLLOUT, index(c));
    }

    void handle(econn& c, std::uint32_t ev) {
        if (c.st == cstate::ended) return;
        if (c.st == cstate::connecting) {
            if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
            return;
        }
        if ((ev & EPOLLOUT) && c.unsent > 0) {
            transmit(c);
            if (c.st == cstate::ended) return;
            if (c.unsent == 0) ep_.mod(c.fd, EPOLLIN, index(c));
        }
        if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
        ssize_t n = recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return fail(c, errno);
        }
        if (n == 0) return on_eof(c);
        on_data(c, rbuf_.data(), static_cast<std::size_t>(n));
    }

    std::vector<char> rbuf_;
    poller ep_;
};

}  // namespace

std::unique_ptr<echo_client> echo_client::make(const options& o, bool verify) {
    if (o.client == client_kind::uring) return make_uring_client(o, verify);
    return std::make_unique<epoll_client>(o, verify);
}

// ---------------------------------------------------------------------------------------------

void put_echo_counters(const echo_client& ec) {
    out().str("client", ec.describe());
    out().integer("connections_opened", static_cast<std::uint64_t>(ec.opened));
    out().integer("connections_established", static_cast<std::uint64_t>(ec.established));
    out().integer("connect_failures", static_cast<std::uint64_t>(ec.connect_failures));
    out().integer("resets", static_cast<std::uint64_t>(ec.resets));
    out().integer("eofs", static_cast<std::uint64_t>(ec.eofs));
    out().integer("other_errors", static_cast<std::uint64_t>(ec.other_errors));
    out().integer("corrupt_echoes", static_cast<std::uint64_t>(ec.corrupt));
}

bool open_all(echo_client& ec, std::size_t n, double hard_deadline) {
    while (ec.opened < n || ec.pending > 0) {
        ec.open_more(n, 256);
        ec.poll_once(ms_until(hard_deadline));
        if (now_s() > hard_deadline) {
            set_error(
                fmt::format("hard cap: only {} of {} connections established", ec.established, n));
            return false;
        }
    }
    if (ec.established < n) {
        set_error(fmt::format("{} of {} connections failed to set up ({})", n - ec.established, n,
                              ec.first_failure));
        return false;
    }
    return true;
}

bool echo_errors(const echo_client& ec) {
    if (ec.resets || ec.eofs || ec.other_errors || ec.corrupt) {
        set_error(fmt::format("echo errors: {} resets, {} EOFs, {} other, {} corrupt ({})",
                              ec.resets, ec.eofs, ec.other_errors, ec.corrupt, ec.first_failure));
        return true;
    }
    return false;
}

}  // namespace load
