#include "orderly/diag/json.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace orderly::diag {
namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0 if it is not one.
std::size_t utf8_sequence(std::string_view s) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xc0) == 0x80; };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
        if (c == 0xed && b(1) > 0x9f) return 0;  // a UTF-16 surrogate
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
        if (c == 0xf4 && b(1) > 0x8f) return 0;  // beyond U+10FFFF
        return 4;
    }
    return 0;
}

// Appends JSON text, putting the commas where they belong.
class writer {
  public:
    writer& open(char bracket) {
        separate();
        out_ += bracket;
        first_.push_back(true);
        return *this;
    }
    writer& close(char bracket) {
        out_ += bracket;
        first_.pop_back();
        return *this;
    }
    writer& key(std::string_view k) {
        separate();
        string(k);
        out_ += ':';
        after_key_ = true;
        return *this;
    }
    writer& text(std::string_view s) {
        separate();
        string(s);
        return *this;
    }
    template <class Int>
    writer& number(Int v) {
        separate();
        char buf[24];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        (void)ec;  // 24 bytes hold any 64-bit integer
        out_.append(buf, end);
        return *this;
    }
    template <class Int>
    writer& number(const std::optional<Int>& v) {
        return v ? number(*v) : null();
    }
    writer& boolean(bool v) {
        separate();
        out_ += v ? "true" : "false";
        return *this;
    }
    writer& null() {
        separate();
        out_ += "null";
        return *this;
    }
    std::string take() { return std::move(out_); }

  private:
    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (first_.empty()) return;
        if (!first_.back()) out_ += ',';
        first_.back() = false;
    }
    void string(std::string_view s) {
        static constexpr char hex[] = "0123456789abcdef";
        out_ += '"';
        while (!s.empty()) {
            const auto c = static_cast<unsigned char>(s[0]);
            const std::size_t n = utf8_sequence(s);
            if (n == 0) {
                out_ += "\\ufffd";
                s.remove_prefix(1);
                continue;
            }
            if (c == '"' || c == '\\') {
                out_ += '\\';
                out_ += static_cast<char>(c);
            } else if (c < 0x20 || c == 0x7f) {
                out_ += "\\u00";
                out_ += hex[c >> 4];
                out_ += hex[c & 0xf];
            } else {
                out_.append(s.substr(0, n));
            }
            s.remove_prefix(n);
        }
        out_ += '"';
    }

    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

void endpoint_value(writer& w, const endpoint& e) {
    if (e.family() == address_family::none) {
        w.null();
    } else {
        w.text(e.to_string());
    }
}

void millis(writer& w, const std::optional<std::chrono::milliseconds>& d) {
    if (d) {
        w.number(static_cast<std::int64_t>(d->count()));
    } else {
        w.null();
    }
}

void tcp_info_value(writer& w, const std::optional<tcp_details>& t) {
    if (!t) {
        w.null();
        return;
    }
    w.open('{');
    w.key("rtt_us").number(t->rtt_us);
    w.key("rto_us").number(t->rto_us);
    w.key("last_data_sent_ms").number(t->last_data_sent_ms);
    w.key("last_data_recv_ms").number(t->last_data_recv_ms);
    w.key("last_ack_recv_ms").number(t->last_ack_recv_ms);
    w.key("unacked_segments").number(t->unacked_segments);
    w.key("retransmits").number(static_cast<unsigned>(t->retransmits));
    w.key("total_retransmits").number(t->total_retransmits);
    w.key("probes").number(static_cast<unsigned>(t->probes));
    w.key("backoff").number(static_cast<unsigned>(t->backoff));
    w.key("bytes_acked").number(t->bytes_acked);
    w.key("bytes_received").number(t->bytes_received);
    w.key("notsent_bytes").number(t->notsent_bytes);
    w.key("peer_window").number(t->peer_window);
    w.close('}');
}

void memory_value(writer& w, const std::optional<memory_details>& m) {
    if (!m) {
        w.null();
        return;
    }
    w.open('{');
    w.key("rmem_alloc").number(m->rmem_alloc);
    w.key("rcvbuf").number(m->rcvbuf);
    w.key("wmem_alloc").number(m->wmem_alloc);
    w.key("sndbuf").number(m->sndbuf);
    w.key("wmem_queued").number(m->wmem_queued);
    w.key("drops").number(m->drops);
    w.close('}');
}

void socket_value(writer& w, const socket_info& s) {
    const auto& k = s.kernel;
    w.open('{');
    w.key("fd");
    if (s.fd >= 0) {
        w.number(s.fd);
    } else {
        w.null();
    }
    w.key("inode").number(k.inode);
    w.key("cookie").number(k.cookie);
    w.key("kind").text(to_string(k.kind));
    w.key("state").text(to_string(s.state));
    w.key("kernel_state").text(to_string(k.state));
    w.key("shutdown");
    if (k.shutdown) {
        w.text(shutdown_arrow(k.shutdown));
    } else {
        w.null();
    }
    w.key("local");
    endpoint_value(w, k.local);
    w.key("peer");
    endpoint_value(w, k.peer);
    w.key("recv_queue").number(k.recv_queue);
    w.key("send_queue").number(k.send_queue);
    w.key("unread_bytes").number(unread_bytes(k));
    w.key("timer").text(to_string(k.timer));
    w.key("timer_expires_ms").number(k.timer_expires_ms);
    w.key("timer_retries").number(static_cast<unsigned>(k.timer_retries));
    w.key("uid").number(k.uid);
    w.key("quiet_for_ms");
    millis(w, s.quiet_for);
    w.key("send_stalled_for_ms");
    millis(w, s.send_stalled_for);
    w.key("unix_peer_inode");
    if (k.is_unix()) {
        w.number(k.unix_peer_inode);
    } else {
        w.null();
    }
    w.key("unix_peer_gone");
    if (k.is_unix()) {
        w.boolean(k.unix_peer_gone);
    } else {
        w.null();
    }
    w.key("tcp_info");
    tcp_info_value(w, k.tcp);
    w.key("memory");
    memory_value(w, k.memory);
    w.close('}');
}

void finding_value(writer& w, const finding& f) {
    w.open('{');
    w.key("kind").text(to_string(f.kind));
    w.key("count").number(f.count);
    w.key("fds").open('[');
    for (const int fd : f.fds)
        w.number(fd);
    w.close(']');
    w.key("inodes").open('[');
    for (const auto ino : f.inodes)
        w.number(ino);
    w.close(']');
    w.key("quiet_for_ms");
    millis(w, f.quiet_for);
    w.key("summary").text(f.summary);
    w.key("evidence").open('[');
    for (const auto& line : f.evidence)
        w.text(line);
    w.close(']');
    w.key("advice").text(f.advice);
    w.close('}');
}

void sockets_value(writer& w, std::string_view name, const std::vector<socket_info>& list) {
    w.key(name).open('[');
    for (const auto& s : list)
        socket_value(w, s);
    w.close(']');
}

void strings_value(writer& w, std::string_view name, const std::vector<std::string>& list) {
    w.key(name).open('[');
    for (const auto& s : list)
        w.text(s);
    w.close(']');
}

}  // namespace

std::string to_json(const socket_info& s) {
    writer w;
    socket_value(w, s);
    return w.take();
}

std::string to_json(const finding& f) {
    writer w;
    finding_value(w, f);
    return w.take();
}

std::string to_json(const process_snapshot& p) {
    writer w;
    w.open('{');
    w.key("pid").number(p.pid);
    w.key("name").text(p.name);
    w.key("command").text(p.command);
    w.key("user").text(p.user);
    w.key("uid").number(p.uid);
    w.key("time_unix_ms")
        .number(static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(p.taken.time_since_epoch())
                .count()));
    w.key("descriptors").open('{');
    w.key("open").number(p.descriptors.open);
    w.key("sockets").number(p.descriptors.sockets);
    w.key("other_sockets").number(p.descriptors.other_sockets);
    w.key("unconnected_tcp").number(p.descriptors.unconnected_tcp);
    w.key("soft_limit").number(p.descriptors.limit.soft);
    w.key("hard_limit").number(p.descriptors.limit.hard);
    w.close('}');
    w.key("states").open('{');
    const auto counts = p.state_counts();
    for (std::size_t i = 0; i < counts.size(); ++i) {
        w.key(to_string(static_cast<socket_state>(i))).number(counts[i]);
    }
    w.close('}');
    sockets_value(w, "listeners", p.listeners);
    sockets_value(w, "connections", p.connections);
    sockets_value(w, "orphans", p.orphans);
    w.key("counters").open('{');
    w.key("listen_overflows").number(p.counters.listen_overflows);
    w.key("listen_drops").number(p.counters.listen_drops);
    w.key("abort_on_close").number(p.counters.abort_on_close);
    w.key("abort_on_data").number(p.counters.abort_on_data);
    w.close('}');
    w.key("findings").open('[');
    for (const auto& f : p.findings)
        finding_value(w, f);
    w.close(']');
    strings_value(w, "notes", p.notes);
    strings_value(w, "changes", p.changes);
    w.close('}');
    return w.take();
}

}  // namespace orderly::diag
