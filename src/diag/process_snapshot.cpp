#include "orderly/diag/process_snapshot.hpp"

#include <algorithm>
#include <unordered_map>

namespace orderly::diag {
namespace {

std::optional<std::chrono::milliseconds> quiet_for(const kernel_socket& k) {
    if (!k.tcp || k.is_listener()) return std::nullopt;
    const auto& t = *k.tcp;
    return std::chrono::milliseconds(
        std::min({t.last_ack_recv_ms, t.last_data_recv_ms, t.last_data_sent_ms}));
}

socket_info info_of(const kernel_socket& k, int fd) {
    return {k, fd, classify(k), quiet_for(k), send_stall_bound(k), false};
}

bool is_tcp_protocol(const std::string& name) {
    return name == "TCP" || name == "TCPv6";
}

bool is_any_address(const endpoint& e) {
    const std::string h = e.host();
    return h == "0.0.0.0" || h == "::";
}

// Does a connection with local endpoint `local` belong to a listener bound to `l`?
bool accepted_by(const endpoint& l, const endpoint& local) {
    return l.port() == local.port() && (is_any_address(l) || l.host() == local.host());
}

}  // namespace

socket_state_counts process_snapshot::state_counts() const noexcept {
    socket_state_counts n{};
    for (const auto& s : listeners)
        ++n[static_cast<std::size_t>(s.state)];
    for (const auto& s : connections)
        ++n[static_cast<std::size_t>(s.state)];
    return n;
}

process_snapshot assemble(const process_info& p, const std::vector<kernel_socket>& table) {
    process_snapshot s;
    s.pid = p.pid;
    s.name = p.name;
    s.command = p.command;
    s.uid = p.uid;
    s.user = p.user;
    s.descriptors.open = p.open_descriptors;
    s.descriptors.sockets = p.sockets.size();
    s.descriptors.limit = p.limit;

    std::unordered_map<std::uint64_t, const kernel_socket*> by_inode;
    for (const auto& k : table) {
        if (k.inode != 0) by_inode.emplace(k.inode, &k);
    }
    for (const auto& d : p.sockets) {
        const auto it = by_inode.find(d.inode);
        if (it == by_inode.end()) {
            ++s.descriptors.other_sockets;
            if (is_tcp_protocol(d.protocol)) {
                ++s.descriptors.unconnected_tcp;
                s.unconnected.push_back({d.fd, d.inode, d.protocol, std::nullopt});
            }
            continue;
        }
        auto info = info_of(*it->second, d.fd);
        (info.kernel.is_listener() ? s.listeners : s.connections).push_back(info);
    }

    for (const auto& k : table) {
        if (!left_to_kernel(k)) continue;
        const bool ours = std::any_of(s.listeners.begin(), s.listeners.end(), [&](const auto& l) {
            return l.kernel.kind == socket_kind::tcp && accepted_by(l.kernel.local, k.local);
        });
        if (ours) s.orphans.push_back(info_of(k, -1));
    }
    return s;
}

}  // namespace orderly::diag
