#include "orderly/net/close_report.hpp"

#include <cstdint>

#include "json_text.hpp"

namespace orderly {
using detail::append_endpoint_json;
using detail::append_int;
using detail::append_json_string;
using detail::json_bool;
using detail::json_int;
using detail::json_key;
using detail::millis;

std::string_view to_string(close_outcome o) noexcept {
    switch (o) {
        case close_outcome::clean:
            return "clean";
        case close_outcome::closed:
            return "closed";
        case close_outcome::unread_data_discarded:
            return "unread_data_discarded";
        case close_outcome::unsent_data_discarded:
            return "unsent_data_discarded";
        case close_outcome::peer_reset:
            return "peer_reset";
        case close_outcome::timed_out:
            return "timed_out";
        case close_outcome::drain_limit:
            return "drain_limit";
        case close_outcome::aborted:
            return "aborted";
        case close_outcome::error:
            return "error";
        case close_outcome::tls_truncated:
            return "tls_truncated";
        case close_outcome::tls_error:
            return "tls_error";
        case close_outcome::not_open:
            return "not_open";
    }
    return "unknown";
}

std::string_view to_string(close_notify_wait w) noexcept {
    switch (w) {
        case close_notify_wait::none:
            return "none";
        case close_notify_wait::received:
            return "received";
        case close_notify_wait::not_waited:
            return "not_waited";
        case close_notify_wait::peer_fin:
            return "peer_fin";
        case close_notify_wait::deadline:
            return "deadline";
    }
    return "unknown";
}

std::string_view to_string(close_method m) noexcept {
    switch (m) {
        case close_method::close:
            return "close";
        case close_method::graceful:
            return "graceful";
        case close_method::abort:
            return "abort";
        case close_method::destructor:
            return "destructor";
    }
    return "unknown";
}

std::string close_report::to_string() const {
    std::string out;
    out.reserve(200);
    out += orderly::to_string(outcome);
    out += " (";
    out += orderly::to_string(method);
    if (error) {
        out += ", ";
        out += error.message();
    }
    out += "): sent ";
    append_int(out, bytes_sent);
    out += " B, received ";
    append_int(out, bytes_received);
    out += " B, drained ";
    append_int(out, bytes_drained);
    out += " B, unacked ";
    append_int(out, unacked_bytes);
    out += " B, unread ";
    append_int(out, unread_bytes);
    out += " B, ";
    if (unsent_bytes > 0) {
        out += "unsent ";
        append_int(out, unsent_bytes);
        out += " B, ";
    }
    out += "fin_sent ";
    out += fin_sent ? "yes" : "no";
    out += ", peer_eof ";
    out += peer_eof ? "yes" : "no";
    if (tcp) {
        out += ", tcp ";
        out += orderly::to_string(tcp->state);
    }
    out += ", ";
    out += local.to_string();
    out += " -> ";
    out += peer.to_string();
    if (tls) {
        out += ", tls ";
        out += tls->version.empty() ? "(no handshake)" : tls->version;
        if (!tls->cipher.empty()) out += " " + tls->cipher;
        if (!tls->alpn.empty()) out += " alpn " + tls->alpn;
        out += ", close_notify sent ";
        out += tls->close_notify_sent ? "yes" : "no";
        out += " received ";
        out += tls->close_notify_received ? "yes" : "no";
        out += " (";
        out += orderly::to_string(tls->wait);
        out += ')';
        if (!tls->detail.empty()) out += ", " + tls->detail;
    }
    out += " (";
    out += millis(close_duration, 1);
    out += " ms)";
    return out;
}

std::string close_report::to_json() const {
    std::string out;
    out.reserve(400);
    out += "{\"outcome\":";
    append_json_string(out, orderly::to_string(outcome));
    json_key(out, "method");
    append_json_string(out, orderly::to_string(method));
    json_key(out, "error");
    if (error) {
        append_json_string(out, error.message());
    } else {
        out += "null";
    }
    json_int(out, "bytes_sent", bytes_sent);
    json_int(out, "bytes_received", bytes_received);
    json_int(out, "bytes_drained", bytes_drained);
    json_int(out, "unacked_bytes", unacked_bytes);
    json_int(out, "unread_bytes", unread_bytes);
    json_int(out, "unsent_bytes", unsent_bytes);
    json_bool(out, "fin_sent", fin_sent);
    json_bool(out, "peer_eof", peer_eof);
    json_key(out, "tcp_state");
    if (tcp) {
        append_json_string(out, orderly::to_string(tcp->state));
        json_int(out, "rtt_us", tcp->rtt_us);
        json_int(out, "retransmits", tcp->total_retransmits);
    } else {
        out += "null,\"rtt_us\":null,\"retransmits\":null";
    }
    json_key(out, "close_duration_ms");
    out += millis(close_duration, 3);
    json_key(out, "lifetime_ms");
    out += millis(lifetime, 3);
    json_key(out, "local");
    append_endpoint_json(out, local);
    json_key(out, "peer");
    append_endpoint_json(out, peer);
    json_key(out, "tls");
    if (tls) {
        out += "{\"close_notify_sent\":";
        out += tls->close_notify_sent ? "true" : "false";
        json_bool(out, "close_notify_received", tls->close_notify_received);
        json_key(out, "close_notify_wait");
        append_json_string(out, orderly::to_string(tls->wait));
        json_key(out, "version");
        append_json_string(out, tls->version);
        json_key(out, "cipher");
        append_json_string(out, tls->cipher);
        json_key(out, "alpn");
        append_json_string(out, tls->alpn);
        json_key(out, "detail");
        append_json_string(out, tls->detail);
        out += '}';
    } else {
        out += "null";
    }
    out += '}';
    return out;
}

}  // namespace orderly
