#pragma once
// Happy Eyeballs (RFC 8305): racing a host's addresses, so that a path that silently drops SYNs
// (a broken IPv6 route) costs one attempt delay instead of the whole connect timeout.
//
// This header holds the options and the schedule itself (`eyeballs`; what a race did is its
// connect_report, connect_report.hpp): which address to try next and when, as a state machine fed
// with events (a lookup answered, an attempt failed or connected, time passed). It opens no socket
// and reads no clock: the blocking orderly::connect (poll(2)), the event layer's orderly::connect
// (loop timers and EPOLLOUT) and the coroutine async_connect, when it exists, all drive this one
// object, and its tests drive it with made-up times.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/core/result.hpp"
#include "orderly/net/connect_report.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {

// RFC 8305 §8's bounds for the connection attempt delay.
inline constexpr clock::duration min_attempt_delay = std::chrono::milliseconds(100);
inline constexpr clock::duration max_attempt_delay = std::chrono::seconds(2);

struct connect_options {
    // Bounds the whole connect: the name lookups and every attempt. Attempts still in flight at
    // the deadline end as timed out; zero or less times out at once.
    clock::duration timeout = std::chrono::seconds(30);
    // RFC 8305 "Connection Attempt Delay": the next address starts this long after the previous
    // attempt did, or at once when an attempt fails. 100 ms to 2 s; 0 = one address at a time
    // (the next starts only when the previous one failed).
    clock::duration attempt_delay = std::chrono::milliseconds(250);
    // RFC 8305 "First Address Family Count": how many addresses of the preferred family come
    // before the first of the other; then the families alternate. At least 1.
    unsigned first_family_count = 1;
    // RFC 8305 "Resolution Delay": when the A answer comes before AAAA, how long to wait for
    // AAAA before connecting over IPv4 (0 to 2 s).
    clock::duration resolution_delay = std::chrono::milliseconds(50);
};

// errc::invalid_argument naming the value out of range and the accepted range.
result<void, error_info> check_connect_options(const connect_options& opts);

// Reorders addresses for a race: the first `first_family_count` of the first address's family,
// then the families alternate; each family keeps its own order. Duplicates are dropped.
std::vector<endpoint> interleave_families(std::span<const endpoint> addresses,
                                          unsigned first_family_count = 1);

// The schedule. Not thread-safe: one driver feeds it from one thread. Times are the driver's
// clock::now(); `start` is when the connect began (the deadline is start + opts.timeout).
//
// A driver adds what it knows (addresses, or the lookups it started), then loops:
//   while (auto i = e.next(now)) open a socket and connect it to e.address(*i);
//   if (e.done()) stop; otherwise wait for a socket, a lookup answer or e.wake_at();
// and reports each event back with failed(), connected() or answer().
class eyeballs {
  public:
    // `target` names the connect in errors ("connect to <target>: ..."), e.g. "example.org:80".
    // The options must have passed check_connect_options().
    eyeballs(const connect_options& opts, clock::time_point start, std::string target);

    // Addresses known up front (a literal, an endpoint list), in the caller's order of
    // preference: the first one's family is the preferred one.
    void add_addresses(std::span<const endpoint> addresses, clock::time_point now);
    // A lookup for `family` (ipv6 = AAAA, ipv4 = A) was started; answer() will follow.
    void expect_answer(address_family family);
    // Its answer: addresses (of that family, in the resolver's order) or why there are none.
    // IPv6 is preferred over IPv4 (RFC 6724's default policy); an A answer that comes first
    // waits up to resolution_delay for the AAAA answer. Addresses that come after the race began
    // join it (the families keep alternating).
    void answer(address_family family, result<std::vector<endpoint>, error_info> addresses,
                clock::time_point now);

    // Starts the next attempt if one is due at `now`: records it and returns its index (the
    // driver then connects a socket to address(index)). nullopt when none is due. Also ends the
    // race once the deadline has passed or nothing is left to try.
    [[nodiscard]] std::optional<std::size_t> next(clock::time_point now);
    // When next() may have something to do without any other event: the next attempt's start,
    // the end of the resolution delay, or the deadline; a time already past when something is
    // due now (call next()). time_point::max() once done().
    [[nodiscard]] clock::time_point wake_at() const noexcept;

    // Attempt `i` failed on its own (connect(2) or SO_ERROR said `error`). The next address then
    // starts at once rather than after the attempt delay.
    void failed(std::size_t i, std::error_code error, clock::time_point now);
    // Attempt `i` connected. True: it is the winner; every other attempt in flight is now
    // `cancelled` (the driver closes them). False: a winner already exists (two completed
    // together) or the race is over: the driver must abort this one too.
    [[nodiscard]] bool connected(std::size_t i, clock::time_point now);
    // The caller gives up (an asynchronous cancel): attempts in flight become `cancelled`.
    void stop(clock::time_point now);

    [[nodiscard]] bool done() const noexcept { return done_; }
    [[nodiscard]] std::optional<std::size_t> winner() const noexcept { return report_.winner; }
    [[nodiscard]] const endpoint& address(std::size_t i) const { return report_.attempts[i].to; }
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    [[nodiscard]] bool waiting_for_answers() const noexcept { return !awaiting_.empty(); }
    [[nodiscard]] clock::time_point deadline_at() const noexcept { return deadline_; }
    [[nodiscard]] const connect_report& report() const noexcept { return report_; }
    // Why the race failed (when done() without a winner): errc::timed_out when the deadline
    // ended it, errc::aborted after stop(), the lookups' error when no address came, otherwise
    // a refusal if any address refused, else the first attempt's error; the text names every
    // address with its own reason.
    [[nodiscard]] const error_info& error() const noexcept { return error_; }

  private:
    struct family_queue {
        address_family family;
        std::vector<endpoint> pending;  // front = next
    };

    void enqueue(const endpoint& e, bool looked_up);
    [[nodiscard]] bool known(const endpoint& e) const;
    [[nodiscard]] bool has_queued() const noexcept;
    [[nodiscard]] bool awaiting_aaaa_only() const noexcept;       // AAAA pending, no IPv6 queued
    [[nodiscard]] clock::time_point hold_until() const noexcept;  // end of the resolution delay
    [[nodiscard]] endpoint pick();
    void finish_if_exhausted(clock::time_point now);
    void finish_failed(std::error_code code, std::string detail, clock::time_point now);
    void end_in_flight(attempt_outcome outcome, clock::time_point now);

    connect_options opts_;
    clock::time_point start_;
    clock::time_point deadline_;
    std::string target_;

    std::vector<family_queue> queues_;  // in order of preference
    std::size_t picks_ = 0;
    address_family preferred_ = address_family::none;
    address_family last_family_ = address_family::none;

    std::vector<address_family> awaiting_;  // lookups not answered yet
    bool any_answer_ = false;
    std::vector<error_info> lookup_errors_;

    clock::time_point last_start_{};
    bool failure_since_last_start_ = false;
    std::size_t in_flight_ = 0;
    bool done_ = false;

    connect_report report_;
    error_info error_;
};

}  // namespace orderly
