#include "orderly/net/connect_report.hpp"

#include <string>

#include "json_text.hpp"

namespace orderly {

using detail::append_int;
using detail::append_json_string;
using detail::json_key;
using detail::millis;
using detail::ms_text;
using detail::reason_text;

std::string_view to_string(attempt_outcome o) noexcept {
    switch (o) {
        case attempt_outcome::in_flight:
            return "in_flight";
        case attempt_outcome::connected:
            return "connected";
        case attempt_outcome::failed:
            return "failed";
        case attempt_outcome::timed_out:
            return "timed_out";
        case attempt_outcome::cancelled:
            return "cancelled";
        case attempt_outcome::lost_tie:
            return "lost_tie";
    }
    return "unknown";
}

std::string connect_report::failures() const {
    std::string out;
    for (const connect_attempt& a : attempts) {
        if (a.outcome != attempt_outcome::failed && a.outcome != attempt_outcome::timed_out) {
            continue;
        }
        if (!out.empty()) out += "; ";
        out += a.to.to_string();
        out += ": ";
        out += a.outcome == attempt_outcome::failed ? reason_text(a.error) : "timed out";
    }
    if (untried > 0) {
        if (!out.empty()) out += "; ";
        append_int(out, untried);
        out += untried == 1 ? " more address not tried" : " more addresses not tried";
    }
    return out;
}

std::string connect_report::to_string() const {
    std::string out;
    if (!winner) {
        out = "not connected after " + ms_text(took);
        const std::string f = failures();
        if (!f.empty()) out += ": " + f;
        return out;
    }
    out = "connected to " + attempts[*winner].to.to_string() + " after " + ms_text(took);
    if (attempts.size() == 1) return out;
    out += " (attempt ";
    append_int(out, *winner + 1);
    out += " of ";
    append_int(out, attempts.size());
    for (std::size_t i = 0; i < attempts.size(); ++i) {
        if (i == *winner) continue;
        const connect_attempt& a = attempts[i];
        out += "; " + a.to.to_string() + " " + std::string(orderly::to_string(a.outcome));
        if (a.outcome == attempt_outcome::failed) out += " (" + reason_text(a.error) + ")";
        out += " after " + ms_text(a.ended - a.started);
    }
    out += ')';
    return out;
}

std::string connect_report::to_json() const {
    std::string out = "{\"connected_to\":";
    if (winner) {
        append_json_string(out, attempts[*winner].to.to_string());
    } else {
        out += "null";
    }
    json_key(out, "connect_ms");
    out += millis(took, 3);
    json_key(out, "first_answer_ms");
    out += millis(first_answer, 3);
    json_key(out, "attempts");
    out += '[';
    for (std::size_t i = 0; i < attempts.size(); ++i) {
        const connect_attempt& a = attempts[i];
        if (i > 0) out += ',';
        out += "{\"to\":";
        append_json_string(out, a.to.to_string());
        json_key(out, "started_ms");
        out += millis(a.started, 3);
        json_key(out, "ended_ms");
        if (a.outcome == attempt_outcome::in_flight) {
            out += "null";
        } else {
            out += millis(a.ended, 3);
        }
        json_key(out, "outcome");
        append_json_string(out, orderly::to_string(a.outcome));
        json_key(out, "error");
        if (a.error) {
            append_json_string(out, reason_text(a.error));
        } else {
            out += "null";
        }
        out += '}';
    }
    out += ']';
    json_key(out, "untried");
    append_int(out, untried);
    out += '}';
    return out;
}

}  // namespace orderly
