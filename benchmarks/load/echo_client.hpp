// The echo client behind latency (W1), pingpong (W2), idle (W5) and stop (W6): N connections,
// each with at most one message outstanding. It is written to be cheap per message (no
// allocation, the echo checked with one memcmp or not at all) so that the server, not the client,
// limits the rate.
//
// The connection logic (what to send next, what counts as a message, how a connection ended) is
// here once; two backends move the bytes:
//   epoll  one epoll_wait per iteration, then one recv and one send syscall per message;
//   uring  a multishot recv per connection into a provided-buffer ring and every send as an SQE,
//          all of an iteration's submissions and its wait in one io_uring_submit_and_wait.
// With 100 connections the epoll client makes ~2 syscalls per message, the uring one ~1/100: the
// client's core stays further from saturation, so the number measures the server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "options.hpp"

namespace load {

enum class cstate : std::uint8_t { connecting, active, idle, ended };
enum class cend : std::uint8_t { open, eof, reset, failed };

struct econn {
    int fd = -1;
    cstate st = cstate::connecting;
    cend end = cend::open;
    bool setting_up = true;       // counted in echo_client::pending
    bool recv_armed = false;      // uring: a multishot recv is in the ring
    bool in_rearm = false;        // uring: queued to get its recv armed again
    std::uint32_t unsent = 0;     // bytes of the current message not yet taken by the kernel
    std::uint32_t in_flight = 0;  // uring: bytes of the send SQE in the ring
    std::uint64_t sent = 0;       // bytes handed to the kernel (uring: submitted)
    std::uint64_t received = 0;
    std::int64_t t_send = 0;
};

class echo_client {
  public:
    // The client of kind `o.client`; `verify` checks every echoed byte against the pattern.
    // Errors during set-up (io_uring unavailable, ...) are reported with set_error.
    [[nodiscard]] static std::unique_ptr<echo_client> make(const options& o, bool verify);
    virtual ~echo_client();
    echo_client(const echo_client&) = delete;
    echo_client& operator=(const echo_client&) = delete;

    // Policy knobs.
    bool keep_pinging = true;   // false: after the first exchange the connection idles
    bool close_on_eof = false;  // stop: EOF → shutdown(write) → close
    std::vector<std::int64_t>* samples = nullptr;  // round-trip times in ns
    std::size_t max_samples = 50'000'000;

    // Counters.
    std::uint64_t messages = 0;  // completed round trips
    std::size_t opened = 0;
    std::size_t pending = 0;      // connecting or waiting for their first echo
    std::size_t established = 0;  // completed at least one round trip
    std::size_t connect_failures = 0;
    std::size_t eofs = 0;
    std::size_t resets = 0;
    std::size_t other_errors = 0;
    std::size_t corrupt = 0;  // echoed bytes differ from what was sent, or more than was sent
    std::size_t open_now = 0;
    std::string first_failure;

    [[nodiscard]] std::vector<econn>& conns() { return conns_; }

    // Starts connects until `total` were started, keeping at most `max_pending` connections
    // between connect() and their first echo: a burst of thousands of connects would overflow
    // the server's accept queue and turn into 1 s SYN retransmissions.
    void open_more(std::size_t total, std::size_t max_pending);

    // Waits up to `timeout_ms` for progress and handles it (uring: submits what the last round
    // queued in the same call). Returns true if the watched pidfd became readable.
    virtual bool poll_once(int timeout_ms) = 0;
    // Makes poll_once report when `pidfd` becomes readable. The caller closes it afterwards.
    virtual void watch_pidfd(int pidfd) = 0;
    // What the backend set up (e.g. "uring, DEFER_TASKRUN"), for the JSON.
    [[nodiscard]] virtual std::string describe() const = 0;

  protected:
    echo_client(const options& o, bool verify);

    // Backend hooks.
    virtual void watch_connect(econn& c) = 0;  // call on_connected once the connect resolved
    virtual void start_receiving(econn& c) = 0;
    virtual void transmit(econn& c) = 0;  // hand c.unsent bytes from offset c.sent to the kernel

    // Shared logic, called by the backends.
    void on_connected(econn& c);  // checks SO_ERROR, then starts the first exchange
    void on_data(econn& c, const char* data, std::size_t n);
    void on_eof(econn& c);
    void fail(econn& c, int err);
    void maybe_complete(econn& c);  // the echo of the current message is in: count, send again
    [[nodiscard]] std::uint64_t index(const econn& c) const {
        return static_cast<std::uint64_t>(&c - conns_.data());
    }

    const options& o_;
    const std::size_t msg_;
    const bool verify_;
    std::vector<econn> conns_;

  private:
    void note_connect_failure(int err);
    void finish(econn& c, cend how);
    void send_message(econn& c);
};

// The uring backend (echo_client_uring.cpp); nullptr with set_error if io_uring is unusable.
[[nodiscard]] std::unique_ptr<echo_client> make_uring_client(const options& o, bool verify);

void put_echo_counters(const echo_client& ec);
// Opens `n` connections and waits until each finished its first round trip (or failed).
bool open_all(echo_client& ec, std::size_t n, double hard_deadline);
// Reports resets, EOFs, other errors and corrupt echoes as the workload's error.
bool echo_errors(const echo_client& ec);

}  // namespace load
