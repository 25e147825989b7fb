#pragma once
// connect_report: what a Happy Eyeballs race did (eyeballs.hpp) — every attempt in the order
// started, how each ended, and who won after how long. Filled by every connect, blocking or not.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly {

// How one attempt ended.
enum class attempt_outcome : std::uint8_t {
    in_flight,  // started, no answer yet
    connected,  // this attempt won the race
    failed,     // its own error (refused, unreachable, ...): `error`
    timed_out,  // still in flight at the deadline
    cancelled,  // still in flight when another attempt won (or the caller gave up): closed
    lost_tie,   // connected as well, just after the winner: aborted (RST) at once
};
// "in_flight", "connected", "failed", ... (stable words for scripts).
std::string_view to_string(attempt_outcome o) noexcept;

struct connect_attempt {
    endpoint to;
    clock::duration started{0};  // since the connect began
    clock::duration ended{0};    // since the connect began; meaningless while in flight
    attempt_outcome outcome = attempt_outcome::in_flight;
    std::error_code error;  // why it failed (outcome failed); empty otherwise
};

// What a race did: every attempt in the order started, and who won after how long.
struct connect_report {
    std::vector<connect_attempt> attempts;
    std::optional<std::size_t> winner;  // index into attempts
    clock::duration took{0};            // from the start to the winner's connect or the failure
    clock::duration first_answer{0};    // when the first lookup answer with addresses came
                                        // (0 when no lookup was needed)
    std::size_t untried = 0;            // addresses known but never attempted

    // "connected to 10.0.0.1:80 after 251 ms (attempt 2 of 2; [fd00::1]:80 cancelled after
    // 251 ms)", or "not connected after 1000 ms: [fd00::1]:80: timed out; 10.0.0.1:80: ..."
    [[nodiscard]] std::string to_string() const;
    // Each failed attempt with its own reason, in the order started:
    // "[::1]:8080: timed out; 127.0.0.1:8080: connection refused".
    [[nodiscard]] std::string failures() const;
    // One JSON object (no newline): {"connected_to":..., "connect_ms":..., "first_answer_ms":...,
    // "attempts":[{"to":..., "started_ms":..., "ended_ms":..., "outcome":..., "error":...}],
    // "untried":...}.
    [[nodiscard]] std::string to_json() const;
};

}  // namespace orderly
