#pragma once
// One connection attempt of a Happy Eyeballs race, as the socket calls both drivers make (the
// blocking connect with poll(2), the event layer's connector with EPOLLOUT). Internal: not
// installed.

#include <span>
#include <string>
#include <system_error>

#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly::detail {

struct started_attempt {
    unique_fd fd;            // SOCK_NONBLOCK | SOCK_CLOEXEC
    bool connected = false;  // connect(2) finished at once (Unix sockets, sometimes loopback)
};

// socket(2) + a non-blocking connect(2) to `to`. Errors: the errno of either call (ECONNREFUSED,
// ENETUNREACH, ENOENT for a missing Unix path, EAGAIN for a full Unix backlog, ...).
result<started_attempt> start_attempt(const endpoint& to) noexcept;

// After the descriptor reported writable (or an error): empty when the connect completed,
// otherwise why it failed (SO_ERROR).
std::error_code attempt_result(int fd) noexcept;

// Has this in-progress connect completed by now? (poll without waiting, then SO_ERROR.) For the
// attempts left when a race ends: one that connected in the same instant as the winner is a
// lost tie, not a cancelled attempt.
bool attempt_connected(int fd) noexcept;

// How errors name a race over an address list: the address itself, or "3 addresses".
std::string list_target(std::span<const endpoint> to);

// Ends a losing attempt at once: SO_LINGER{1,0} and close, so a loser that did connect sends
// RST instead of leaving the peer a half-open connection; one still in SYN_SENT sends nothing.
void abort_attempt(unique_fd& fd) noexcept;

}  // namespace orderly::detail
