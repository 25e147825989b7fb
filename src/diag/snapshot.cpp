#include "orderly/diag/snapshot.hpp"

#include <fcntl.h>

#include <cerrno>
#include <map>
#include <unordered_set>

#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/diag/sock_diag.hpp"

namespace orderly::diag {
namespace {

// The socket table of the namespace of `pid` (inode `netns`), or of ours.
result<socket_table, error_info> table_for(int pid, std::uint64_t netns) {
    const std::uint64_t own = own_netns();
    if (netns == 0 || own == 0 || netns == own) return dump_sockets();
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    unique_fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
        const int e = errno;
        return fail(errno_code(e), "process " + std::to_string(pid) +
                                       " is in another network namespace and " + path +
                                       " cannot be opened: " + errno_code(e).message());
    }
    return dump_sockets(ns.get());
}

// Names the protocol of each socket descriptor of `p` that is in no table, so that assemble()
// can tell TCP sockets in state CLOSE from UDP, netlink and the like. Not when the table is
// incomplete: a socket missing from it is not known to be in no table.
void name_unlisted_protocols(process_info& p, const socket_table& t) {
    if (!t.complete) return;
    std::unordered_set<std::uint64_t> listed;
    for (const auto& k : t.sockets) {
        if (k.inode != 0) listed.insert(k.inode);
    }
    for (auto& d : p.sockets) {
        if (listed.count(d.inode) != 0) continue;
        d.protocol = socket_protocol(p.pid, d.fd, d.inode).value_or("");
    }
}

void finish(process_snapshot& s, const socket_table& t, bool other_netns,
            const snapshot_options& opts) {
    s.taken = std::chrono::system_clock::now();
    s.counters = read_tcp_counters(s.pid);
    s.notes.insert(s.notes.end(), t.notes.begin(), t.notes.end());
    if (!t.complete) {
        s.notes.emplace_back(
            "the socket table kept changing while it was read: a socket may be missing");
    }
    if (other_netns) {
        s.notes.emplace_back(
            "the process is in another network namespace; its sockets were "
            "read there");
    }
    const std::size_t others = s.descriptors.other_sockets - s.descriptors.unconnected_tcp;
    if (others > 0) {
        s.notes.push_back(std::to_string(others) +
                          (others == 1 ? " socket descriptor is" : " socket descriptors are") +
                          " in no TCP or Unix stream table and not TCP: UDP, netlink, raw, "
                          "packet or Unix datagram sockets, which the doctor does not examine");
    }
    s.findings = diagnose(s, {opts.min_age});
}

}  // namespace

result<process_snapshot, error_info> snapshot(int pid, const snapshot_options& opts) {
    auto p = read_process(pid);
    if (!p) return failure{p.error()};
    auto t = table_for(pid, p->netns);
    if (!t) return failure{t.error()};
    name_unlisted_protocols(*p, *t);
    auto s = assemble(*p, t->sockets);
    finish(s, *t, p->netns != 0 && p->netns != own_netns(), opts);
    return s;
}

result<system_snapshot, error_info> snapshot_all(const snapshot_options& opts) {
    system_snapshot out;
    const std::uint64_t own = own_netns();
    std::map<std::uint64_t, result<socket_table, error_info>> tables;
    std::map<std::uint64_t, std::size_t> skipped;  // per namespace that could not be read
    for (const int pid : list_processes()) {
        auto p = read_process(pid);
        if (!p) {
            if (p.error().code == errno_code(EACCES)) ++out.unreadable;
            continue;  // exited meanwhile, or not readable
        }
        if (p->sockets.empty()) continue;
        const std::uint64_t ns = p->netns != 0 ? p->netns : own;
        auto it = tables.find(ns);
        if (it == tables.end()) it = tables.emplace(ns, table_for(pid, ns)).first;
        if (!it->second) {
            if (ns == own) return failure{it->second.error()};
            ++skipped[ns];
            continue;
        }
        name_unlisted_protocols(*p, *it->second);
        auto s = assemble(*p, it->second->sockets);
        if (s.listeners.empty() && s.connections.empty() && s.unconnected.empty()) continue;
        finish(s, *it->second, ns != own, opts);
        out.processes.push_back(std::move(s));
    }
    for (const auto& [ns, n] : skipped) {
        out.notes.push_back(std::to_string(n) + " processes in network namespace " +
                            std::to_string(ns) +
                            " were skipped: " + tables.at(ns).error().message());
    }
    std::unordered_set<std::uint64_t> owned;
    for (const auto& s : out.processes) {
        for (const auto& o : s.orphans)
            owned.insert(o.kernel.cookie);
    }
    for (const auto& [ns, t] : tables) {
        if (!t) continue;
        for (const auto& k : t->sockets) {
            if (left_to_kernel(k) && owned.count(k.cookie) == 0) ++out.unowned_orphans;
        }
    }
    if (out.unreadable > 0) {
        out.notes.push_back(std::to_string(out.unreadable) +
                            " processes of other users could not be read; run as root to "
                            "include them");
    }
    return out;
}

}  // namespace orderly::diag
