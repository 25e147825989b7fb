#include "lab_segments.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>

namespace orderly::cli {
namespace {

bool has_flag(const lab_event& e, const char* flag) {
    return e.flags.find(flag) != std::string::npos;
}

bool is_plain(const lab_event& e) {
    return e.what == lab_event::kind::segment && !has_flag(e, "SYN") && !has_flag(e, "FIN") &&
           !has_flag(e, "RST") && e.record.empty();
}

}  // namespace

void mark_retransmissions(std::vector<lab_event>& events) {
    // Per direction: the sequence number after the highest byte (or SYN/FIN) sent so far.
    std::map<std::string, std::uint32_t> next;
    for (auto& e : events) {
        if (e.what != lab_event::kind::segment) continue;
        const std::uint32_t span = static_cast<std::uint32_t>(e.length) +
                                   (has_flag(e, "SYN") ? 1U : 0U) + (has_flag(e, "FIN") ? 1U : 0U);
        if (span == 0) continue;  // a pure ACK or RST occupies no sequence space
        const std::uint32_t end = e.seq + span;
        const auto it = next.find(e.call);
        if (it == next.end()) {
            next.emplace(e.call, end);
            continue;
        }
        // Serial-number arithmetic (RFC 1982): a start before `next` was sent already.
        const auto behind = static_cast<std::int32_t>(it->second - e.seq);
        if (behind > 0) {
            e.retransmission = true;
            e.retransmitted = std::min<std::uint64_t>(e.length, static_cast<std::uint32_t>(behind));
        }
        if (static_cast<std::int32_t>(end - it->second) > 0) it->second = end;
    }
}

std::string segment_label(const lab_event& e) {
    std::string s;
    if (e.length > 0) {
        s = fmt::format("data {} B", e.length);
        if (has_flag(e, "FIN")) s += " + FIN";
        if (has_flag(e, "RST")) s += " + RST";
    } else {
        s = e.flags;
    }
    if (e.retransmission) s += ", retransmitted";
    if (!e.record.empty()) s += ": " + e.record;
    return s;
}

std::string tls_records_in(const captured_segment& s, const std::vector<captured_segment>& all,
                           const std::vector<lab_connection>& conns,
                           const std::vector<lab_tls_record>& records) {
    if (s.payload == 0 || records.empty()) return {};
    std::string out;
    for (const auto& r : records) {
        if (r.conn >= conns.size()) continue;
        const auto& c = conns[r.conn];
        const std::uint16_t src = r.from_client ? c.client_port : c.server_port;
        const std::uint16_t dst = r.from_client ? c.server_port : c.client_port;
        if (s.src_port != src || s.dst_port != dst) continue;
        // The sender's initial sequence number: its SYN (SYN,ACK for the server).
        const auto syn = std::find_if(all.begin(), all.end(), [&](const captured_segment& o) {
            return o.src_port == src && o.dst_port == dst && (o.flags & tcp_syn) != 0;
        });
        if (syn == all.end()) continue;
        const std::uint32_t at = s.seq - syn->seq - 1;  // this segment's first stream byte
        const std::uint32_t first = static_cast<std::uint32_t>(r.offset);
        // The record starts in this segment.
        if (static_cast<std::uint32_t>(first - at) < s.payload) {
            if (!out.empty()) out += " + ";
            out += r.what;
        }
    }
    return out;
}

std::string segment_flags_note(const lab_event& e) {
    return e.length > 0 ? e.flags : std::string();
}

std::vector<lab_event> merge_runs(std::vector<lab_event> in) {
    std::vector<lab_event> out;
    std::size_t i = 0;
    while (i < in.size()) {
        if (!is_plain(in[i])) {
            out.push_back(std::move(in[i++]));
            continue;
        }
        std::size_t j = i;
        std::uint64_t up = 0, down = 0, again = 0;
        std::uint32_t count = 0, acks = 0;
        while (j < in.size() && is_plain(in[j])) {
            (in[j].to_server ? up : down) += in[j].length;
            count += in[j].count;
            again += in[j].retransmitted;
            acks += in[j].length == 0 ? 1U : in[j].acks;
            ++j;
        }
        if (j - i <= 2) {
            for (; i < j; ++i)
                out.push_back(std::move(in[i]));
            continue;
        }
        lab_event run = in[i];
        run.count = count;
        run.acks = acks;
        run.length = up + down;
        run.retransmitted = again;
        run.retransmission = again > 0;
        run.to_server = up >= down;
        run.flags = "data";
        run.side = run.to_server ? "client" : "server";
        if (up > 0 && down > 0) {
            run.call = "client <-> server";
        } else {
            run.call = run.to_server ? "client -> server" : "server -> client";
        }
        // "data 262144 B in 180 segments + 14848 B retransmitted, 60 ACKs"
        const std::uint32_t data_segments = count - acks;
        run.result = fmt::format("data {} B in {} segment{}", up + down - again, data_segments,
                                 data_segments == 1 ? "" : "s");
        if (again > 0) run.result += fmt::format(" + {} B retransmitted", again);
        if (acks > 0) run.result += fmt::format(", {} ACK{}", acks, acks == 1 ? "" : "s");
        if (up > 0 && down > 0) run.result += fmt::format(" ({} B up, {} B down)", up, down);
        out.push_back(std::move(run));
        i = j;
    }
    return out;
}

std::vector<timeline_row> timeline_rows(const std::vector<lab_event>& events) {
    std::vector<timeline_row> rows;
    std::vector<std::size_t> pending;  // calls that have not returned yet
    auto flush = [&](double before) {
        while (!pending.empty()) {
            auto it = std::min_element(pending.begin(), pending.end(), [&](auto a, auto b) {
                return events[a].t_end_ms < events[b].t_end_ms;
            });
            if (events[*it].t_end_ms >= before) return;
            rows.push_back({*it, true, false});
            pending.erase(it);
        }
    };
    for (std::size_t i = 0; i < events.size(); ++i) {
        flush(events[i].t_ms);
        const auto& e = events[i];
        const bool spans = e.what == lab_event::kind::call && i + 1 < events.size() &&
                           events[i + 1].t_ms <= e.t_end_ms;
        if (spans) pending.push_back(i);
        rows.push_back({i, false, spans});
    }
    flush(std::numeric_limits<double>::infinity());
    return rows;
}

std::string lab_state_word(std::string state) {
    return state == "CLOSE" ? std::string("CLOSED") : state;
}

}  // namespace orderly::cli
