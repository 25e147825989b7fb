#pragma once
// The captured segments of a lab timeline as a newcomer reads them: data labelled as data
// ("data 3000 B"), pure ACKs as ACKs, retransmissions marked, long runs merged into one row.

#include <string>
#include <vector>

#include "lab.hpp"

namespace orderly::cli {

// Marks each segment (in time order) whose sequence range its sender had already sent, per
// direction of each connection (the `call` text, "client#2 -> server#2", names the direction).
void mark_retransmissions(std::vector<lab_event>& events);

// The row label of one segment: "data 3000 B" / "data 3000 B, retransmitted"; "ACK"; "SYN,ACK";
// "data 10 B + FIN". The flags of a data segment are not in it (see segment_flags_note).
std::string segment_label(const lab_event& e);
// "ACK" for a data segment's flags, drawn small beside its label; empty for other segments.
std::string segment_flags_note(const lab_event& e);

// Runs of data and ACK segments between two other rows become one row ("data" flags, totals).
std::vector<lab_event> merge_runs(std::vector<lab_event> in);

// One word for a closed socket: TCP_INFO calls it CLOSE, the connection table's absence CLOSED.
std::string lab_state_word(std::string state);

}  // namespace orderly::cli
