#include "orderly/diag/changes.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace orderly::diag {
namespace {

constexpr std::size_t max_queue_lines = 10;

std::uint64_t key_of(const socket_info& s) {
    return s.kernel.cookie != 0 ? s.kernel.cookie : s.kernel.inode;
}

using socket_index = std::unordered_map<std::uint64_t, const socket_info*>;

socket_index index_of(const process_snapshot& p) {
    socket_index out;
    for (const auto* list : {&p.listeners, &p.connections}) {
        for (const auto& s : *list)
            out.emplace(key_of(s), &s);
    }
    return out;
}

std::string fd_list(const std::vector<int>& fds) {
    std::string out = fds.size() == 1 ? "fd " : "fds ";
    for (std::size_t i = 0; i < fds.size() && i < 10; ++i) {
        out += (i == 0 ? "" : ", ") + std::to_string(fds[i]);
    }
    if (fds.size() > 10) out += " and " + std::to_string(fds.size() - 10) + " more";
    return out;
}

void queue_growth(const socket_info& was, const socket_info& now, std::vector<std::string>& lines) {
    const bool listener = now.kernel.is_listener();
    const auto grew = [&](std::uint32_t a, std::uint32_t b, std::string_view what,
                          std::string_view unit) {
        // A queue that was empty at the last look and holds bytes now is traffic; one that was
        // not empty and has grown is not being drained.
        if (a == 0 || b <= a) return;
        lines.push_back("fd " + std::to_string(now.fd) + " " + now.kernel.local.to_string() + ": " +
                        std::string(what) + " " + std::to_string(a) + " -> " + std::to_string(b) +
                        std::string(unit));
    };
    if (listener) {
        grew(was.kernel.recv_queue, now.kernel.recv_queue, "accept queue", "");
        return;
    }
    grew(was.kernel.recv_queue, now.kernel.recv_queue, "receive queue", " B");
    grew(was.kernel.send_queue, now.kernel.send_queue, "send queue", " B");
}

std::map<finding_kind, std::size_t> finding_counts(const process_snapshot& p) {
    std::map<finding_kind, std::size_t> out;
    for (const auto& f : p.findings)
        out[f.kind] = f.count;
    return out;
}

void finding_changes(const process_snapshot& before, const process_snapshot& after,
                     std::vector<std::string>& out) {
    const auto was = finding_counts(before);
    const auto now = finding_counts(after);
    for (const auto& [kind, n] : now) {
        const auto it = was.find(kind);
        const std::string name(to_string(kind));
        if (it == was.end()) {
            out.push_back("new finding: " + name + " (" + std::to_string(n) + ")");
        } else if (it->second != n) {
            out.push_back(name + ": " + std::to_string(it->second) + " -> " + std::to_string(n));
        }
    }
    for (const auto& [kind, n] : was) {
        if (now.count(kind) == 0) out.push_back("resolved: " + std::string(to_string(kind)));
    }
}

}  // namespace

std::vector<std::string> changes_between(const process_snapshot& before,
                                         const process_snapshot& after) {
    std::vector<std::string> out;
    const auto was = index_of(before);
    const auto now = index_of(after);

    // Sockets that entered a state (new ones included), grouped by the state they entered.
    std::map<socket_state, std::pair<std::vector<int>, std::set<std::string>>> entered;
    std::vector<std::string> queues;
    for (const auto* list : {&after.listeners, &after.connections}) {
        for (const auto& s : *list) {
            const auto it = was.find(key_of(s));
            if (it == was.end() || it->second->state != s.state) {
                auto& [fds, kernel_states] = entered[s.state];
                fds.push_back(s.fd);
                kernel_states.insert(std::string(to_string(s.kernel.state)));
            }
            if (it != was.end()) queue_growth(*it->second, s, queues);
        }
    }
    for (auto& [state, group] : entered) {
        auto& [fds, kernel_states] = group;
        std::sort(fds.begin(), fds.end());
        std::string states;
        for (const auto& k : kernel_states)
            states += (states.empty() ? "" : ", ") + k;
        out.push_back("+" + std::to_string(fds.size()) + " " + std::string(to_string(state)) +
                      " (" + states + "): " + fd_list(fds));
    }

    std::vector<int> gone;
    for (const auto* list : {&before.listeners, &before.connections}) {
        for (const auto& s : *list) {
            if (now.count(key_of(s)) == 0) gone.push_back(s.fd);
        }
    }
    if (!gone.empty()) {
        std::sort(gone.begin(), gone.end());
        out.push_back("-" + std::to_string(gone.size()) + " gone: " + fd_list(gone));
    }

    std::vector<int> ended;  // TCP sockets found in state CLOSE that were not so before
    for (const auto& u : after.unconnected) {
        const bool known = std::any_of(
            before.unconnected.begin(), before.unconnected.end(),
            [&](const unconnected_socket& w) { return w.inode == u.inode && w.fd == u.fd; });
        if (!known) ended.push_back(u.fd);
    }
    if (!ended.empty()) {
        out.push_back("+" + std::to_string(ended.size()) +
                      " TCP not connected (state CLOSE), still held: " + fd_list(ended));
    }

    const std::size_t shown = std::min(queues.size(), max_queue_lines);
    out.insert(out.end(), queues.begin(), queues.begin() + static_cast<std::ptrdiff_t>(shown));
    if (queues.size() > shown) {
        out.push_back("... and " + std::to_string(queues.size() - shown) + " more queues grew");
    }
    if (before.descriptors.open != after.descriptors.open) {
        out.push_back("descriptors " + std::to_string(before.descriptors.open) + " -> " +
                      std::to_string(after.descriptors.open));
    }
    if (before.orphans.size() != after.orphans.size()) {
        out.push_back("sockets left to the kernel " + std::to_string(before.orphans.size()) +
                      " -> " + std::to_string(after.orphans.size()));
    }
    finding_changes(before, after, out);
    return out;
}

namespace {

// A send queue that has not moved since `was`: nothing more acknowledged, and the queue no
// smaller (the program may have added to it). tcpi_last_data_sent and tcpi_last_ack_recv cannot
// tell, as every retransmission and every duplicate ACK resets them.
void carry_send_stall(const socket_info& was, socket_info& now, std::chrono::milliseconds elapsed) {
    const auto& a = was.kernel;
    const auto& b = now.kernel;
    if (!a.tcp || !b.tcp || a.send_queue == 0 || b.send_queue == 0) return;
    if (a.tcp->bytes_acked != b.tcp->bytes_acked || b.send_queue < a.send_queue) {
        // It moved in between: what one look claimed cannot be longer than that.
        if (now.send_stalled_for && *now.send_stalled_for > elapsed) now.send_stalled_for = elapsed;
        return;
    }
    const auto carried = was.send_stalled_for.value_or(std::chrono::milliseconds(0)) + elapsed;
    if (!now.send_stalled_for || *now.send_stalled_for < carried) {
        now.send_stalled_for = carried;
        now.stall_seen_across_looks = true;
    }
}

void carry_unconnected(const process_snapshot& before, process_snapshot& after,
                       std::chrono::milliseconds elapsed) {
    for (auto& u : after.unconnected) {
        for (const auto& w : before.unconnected) {
            if (w.inode == u.inode && w.fd == u.fd) {
                u.held_for = w.held_for.value_or(std::chrono::milliseconds(0)) + elapsed;
                break;
            }
        }
    }
}

}  // namespace

void carry_quiet_times(const process_snapshot& before, process_snapshot& after) {
    const auto was = index_of(before);
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(after.taken - before.taken);
    if (elapsed.count() < 0) return;
    carry_unconnected(before, after, elapsed);
    for (auto* list : {&after.listeners, &after.connections}) {
        for (auto& s : *list) {
            const auto it = was.find(key_of(s));
            if (it != was.end()) carry_send_stall(*it->second, s, elapsed);
            if (s.quiet_for) continue;
            if (it == was.end()) continue;
            const auto& k = it->second->kernel;
            if (it->second->state != s.state || k.recv_queue != s.kernel.recv_queue ||
                k.send_queue != s.kernel.send_queue || k.shutdown != s.kernel.shutdown) {
                continue;
            }
            s.quiet_for = it->second->quiet_for.value_or(std::chrono::milliseconds(0)) + elapsed;
        }
    }
}

}  // namespace orderly::diag
