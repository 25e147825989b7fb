#pragma once
// Findings: what is wrong with how a process ends its connections, each with the evidence (the
// kernel's numbers) and what to change in the program. diagnose() derives them from a
// process_snapshot alone, so it is a pure function.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orderly::diag {

struct process_snapshot;

enum class finding_kind : std::uint8_t {
    close_wait,              // the peer finished; the program neither closed nor shut down writing
    closed_not_released,     // a TCP socket in state CLOSE (in no table) still held by a descriptor
    unread_after_peer_eof,   // unread bytes after the peer's FIN: close() now resets
    send_queue_stuck,        // bytes queued that the peer does not take (zero window, no ACKs)
    fin_wait2,               // the program shut down writing; the peer's FIN does not come
    read_shut,               // shutdown(read) while the peer may still send (ss's "-->")
    orphaned,                // closed, but the kernel is still ending the connection for it
    accept_queue_full,       // a listener's accept queue has reached its backlog
    descriptors_near_limit,  // 90 % or more of RLIMIT_NOFILE in use
};
// The names above, as text ("close_wait", ...): stable, used in --json.
std::string_view to_string(finding_kind k) noexcept;

struct finding {
    finding_kind kind = finding_kind::close_wait;
    std::size_t count = 0;              // sockets concerned (descriptors, for the limit)
    std::vector<int> fds;               // the descriptors concerned, ascending (none for orphans)
    std::vector<std::uint64_t> inodes;  // the sockets concerned (0 for orphans)
    // The shortest time nothing moved on any of them; nullopt when the kernel does not say.
    std::optional<std::chrono::milliseconds> quiet_for;
    std::string summary;                // one line: what is wrong
    std::vector<std::string> evidence;  // one line per socket (at most 10) or per number
    std::string advice;                 // what to change in the program
};

struct diagnose_options {
    // Sockets quiet for less than this are not reported: a busy server passes through CLOSE_WAIT
    // for microseconds on every connection. Sockets whose quietness is unknown are reported.
    std::chrono::milliseconds min_age{1000};
};

// The findings for `p`, in the order of finding_kind; each kind at most once.
std::vector<finding> diagnose(const process_snapshot& p, const diagnose_options& opts = {});

}  // namespace orderly::diag
