#pragma once
// The lab's close-wait-leak scenario ends with orderly doctor's check, run by the lab on its own
// process: the same orderly::diag::snapshot() that `orderly doctor PID` runs from outside.

#include <cstddef>
#include <string>
#include <vector>

namespace orderly::cli {

struct doctor_check {
    std::size_t named = 0;           // how many of the descriptors the close_wait finding names
    std::vector<std::string> lines;  // the finding as the doctor prints it, for the timeline
};

// Diagnoses this process (with --min-age 0: the scenario's sockets are milliseconds old) and
// reports the close_wait finding about `fds`, or that there is none, or why it could not look.
doctor_check doctor_close_wait_check(const std::vector<int>& fds);

}  // namespace orderly::cli
