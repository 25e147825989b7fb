#pragma once
// The captured segments of a lab timeline as a newcomer reads them: data labelled as data
// ("data 3000 B"), pure ACKs as ACKs, retransmissions marked, long runs merged into one row.

#include <string>
#include <vector>

#include "capture.hpp"
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

// The TLS records (as the scenario registered them) whose first byte segment `s` carries, joined
// with " + "; empty for none. Stream offsets count from the sender's SYN, found in `all`.
std::string tls_records_in(const captured_segment& s, const std::vector<captured_segment>& all,
                           const std::vector<lab_connection>& conns,
                           const std::vector<lab_tls_record>& records);

// Runs of data and ACK segments between two other rows become one row ("data" flags, totals).
std::vector<lab_event> merge_runs(std::vector<lab_event> in);

// The order in which a timeline is shown, as (event index, is_return): each event at its start;
// a call during which other events happened (it spans them) a second time after the last of them,
// where it returned, with its result and the states at its return.
struct timeline_row {
    std::size_t index;
    bool is_return;
    bool spans;  // a call's start row whose return row comes later
};
std::vector<timeline_row> timeline_rows(const std::vector<lab_event>& events);

// One word for a closed socket: TCP_INFO calls it CLOSE, the connection table's absence CLOSED.
std::string lab_state_word(std::string state);

}  // namespace orderly::cli
