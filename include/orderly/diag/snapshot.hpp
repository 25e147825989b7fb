#pragma once
// orderly::diag::snapshot: the sockets of one process (or of every process) and what is wrong
// with how it ends them — what `orderly doctor` prints, for a server to log its own health:
//
//   auto s = orderly::diag::snapshot(::getpid());
//   if (s) for (const auto& f : s->findings) log(f.summary);

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag {

struct snapshot_options {
    // Findings about sockets quiet for less than this are left out (see diagnose_options).
    std::chrono::milliseconds min_age{1000};
};

// Reads /proc/PID and the socket tables of its network namespace (entering it when it is not
// ours, which needs CAP_SYS_ADMIN), joins them and diagnoses. Takes a few milliseconds; blocks at
// most 5 s per netlink receive. Errors: those of read_process() (ESRCH: no such process; EACCES:
// another user's process) and of dump_sockets(), each with a detail that says what to do.
result<process_snapshot, error_info> snapshot(int pid, const snapshot_options& opts = {});

struct system_snapshot {
    std::vector<process_snapshot> processes;  // those holding a TCP or Unix stream socket, by PID
    std::size_t unreadable = 0;               // processes whose descriptors this user may not read
    std::size_t unowned_orphans = 0;  // sockets left to the kernel on no process's listening port
    std::vector<std::string> notes;
};

// The same for every process in /proc, one socket dump per network namespace. Processes that
// exit meanwhile are skipped; unreadable ones are counted. Errors: dump_sockets()'s for our own
// namespace (other namespaces that cannot be entered become a note).
result<system_snapshot, error_info> snapshot_all(const snapshot_options& opts = {});

}  // namespace orderly::diag
