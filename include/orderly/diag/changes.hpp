#pragma once
// What changed between two snapshots of one process (orderly doctor --watch): sockets that
// entered a state, sockets that went away, queues that grew, descriptors, findings that appeared
// or were resolved. Pure functions over two snapshots.

#include <string>
#include <vector>

#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag {

// One line per change, e.g. "+3 half_closed_by_peer (CLOSE_WAIT): fds 8, 9, 10" or
// "fd 5 127.0.0.1:8000: send queue 4096 -> 65536 B" (a queue that was not empty and grew).
// Sockets are matched by the kernel's cookie. Empty when nothing changed.
std::vector<std::string> changes_between(const process_snapshot& before,
                                         const process_snapshot& after);

// For sockets whose quiet_for the kernel does not report (Unix): when `before` saw the same
// socket in the same state with the same queues, it has been quiet at least since then, so
// `after`'s quiet_for becomes before's (0 if unknown) plus the time between the snapshots.
// Likewise a TCP send queue with the same bytes_acked and no smaller queue has stood still
// since `before` (send_stalled_for), and a TCP socket in state CLOSE held by the same fd since
// `before` has been so at least that long (unconnected_socket::held_for).
void carry_quiet_times(const process_snapshot& before, process_snapshot& after);

}  // namespace orderly::diag
