#pragma once
// How `orderly doctor` prints snapshots for people (--json prints orderly::diag::to_json).

#include <map>

#include "orderly/diag/snapshot.hpp"

namespace orderly::cli {

// A process's sockets by state, its findings with evidence and advice, and its notes; with
// `verbose` every socket as a table row too.
void print_process(const diag::process_snapshot& p, bool verbose);
// --watch after the first look: what changed since, and the findings in one line.
void print_changes(const diag::process_snapshot& p);
// The line that starts each later look, and which watched processes have exited.
void print_round_header(const std::map<int, diag::process_snapshot>& now,
                        const std::map<int, diag::process_snapshot>& before, bool all);
// --all: how many processes were examined, with findings, unreadable.
void print_system_summary(const diag::system_snapshot& all,
                          const std::map<int, diag::process_snapshot>& processes);

}  // namespace orderly::cli
