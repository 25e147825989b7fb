// The human form of orderly doctor's report: one block per process, findings first in words.

#include "doctor_text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <string_view>

namespace orderly::cli {
namespace {

constexpr std::size_t width = 100;

// Text from the kernel (Unix socket names, command lines) may hold control characters; a
// terminal must not execute them.
std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) c = u == '\n' || u == '\t' ? ' ' : '?';
    }
    return out;
}

// "s", "ms" or "B", perhaps followed by punctuation: a unit stays on its number's line.
bool is_unit(std::string_view word) {
    const std::size_t end = word.find_first_of(",;:).");
    const std::string_view w = word.substr(0, end);
    return w == "s" || w == "ms" || w == "B";
}

// Prints `text` wrapped at `width` columns, every line indented by `indent` spaces and the first
// one starting with `lead`.
void print_wrapped(std::string_view lead, std::string_view text, std::size_t indent) {
    const std::string pad(indent, ' ');
    std::string line = pad + std::string(lead);
    std::size_t pos = 0;
    bool first_word = true;
    while (pos < text.size()) {
        const std::size_t end = std::min(text.find(' ', pos), text.size());
        const std::string_view word = text.substr(pos, end - pos);
        if (!first_word && !is_unit(word) && line.size() + 1 + word.size() > width) {
            fmt::print("{}\n", line);
            line = pad + "  ";
            first_word = true;
        }
        if (!first_word) line += ' ';
        line += word;
        first_word = false;
        pos = end + 1;
    }
    fmt::print("{}\n", line);
}

std::string command_of(const diag::process_snapshot& p) {
    std::string cmd = printable(p.command.empty() ? p.name : p.command);
    if (cmd.size() > 60) cmd = cmd.substr(0, 57) + "...";
    return cmd;
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string states_line(const diag::process_snapshot& p) {
    std::map<diag::socket_state, std::map<std::string, std::size_t>> by_state;
    for (const auto* list : {&p.listeners, &p.connections}) {
        for (const auto& s : *list)
            ++by_state[s.state][std::string(to_string(s.kernel.state))];
    }
    std::string out;
    for (const auto& [state, kernel] : by_state) {
        std::size_t n = 0;
        std::string detail;
        for (const auto& [name, k] : kernel) {
            n += k;
            detail += fmt::format("{}{} {}", detail.empty() ? "" : ", ", name, k);
        }
        out += fmt::format("{}{} {} ({})", out.empty() ? "" : ", ", to_string(state), n, detail);
    }
    return out;
}

std::string findings_line(const diag::process_snapshot& p) {
    if (p.findings.empty()) return "no findings";
    std::string kinds;
    for (const auto& f : p.findings) {
        kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", to_string(f.kind), f.count);
    }
    return fmt::format("{}: {}", plural(p.findings.size(), "finding", "findings"), kinds);
}

std::string fd_list(const std::vector<int>& fds) {
    std::string out = fds.size() == 1 ? "fd " : "fds ";
    for (std::size_t i = 0; i < fds.size() && i < 20; ++i) {
        out += fmt::format("{}{}", i == 0 ? "" : ", ", fds[i]);
    }
    if (fds.size() > 20) out += fmt::format(" and {} more", fds.size() - 20);
    return out;
}

void print_socket_table(const diag::process_snapshot& p) {
    fmt::print("    {:>5} {:<11} {:<19} {:<11} {:<4} {:>8} {:>8}  {}\n", "fd", "kind", "state",
               "kernel", "shut", "recv-q", "send-q", "local -> peer");
    for (const auto* list : {&p.listeners, &p.connections, &p.orphans}) {
        for (const auto& s : *list) {
            const auto& k = s.kernel;
            fmt::print(
                "    {:>5} {:<11} {:<19} {:<11} {:<4} {:>8} {:>8}  {} -> {}\n",
                s.fd >= 0 ? std::to_string(s.fd) : "-", to_string(k.kind), to_string(s.state),
                to_string(k.state), diag::shutdown_arrow(k.shutdown), k.recv_queue, k.send_queue,
                printable(k.local.to_string()),
                k.peer.family() == address_family::none ? "*" : printable(k.peer.to_string()));
        }
    }
}

}  // namespace

void print_process(const diag::process_snapshot& p, bool verbose) {
    fmt::print("process {} ({}), user {}\n", p.pid, command_of(p), printable(p.user));
    const auto& d = p.descriptors;
    const std::string limit = d.limit.soft ? std::to_string(*d.limit.soft) : "unlimited";
    const std::size_t others = d.other_sockets - d.unconnected_tcp;
    if (p.listeners.empty() && p.connections.empty() && p.orphans.empty()) {
        // TCP sockets in state CLOSE are in no table: they are no connections, but TCP sockets.
        fmt::print("  no {}TCP or Unix stream sockets; {} of {} descriptors in use ({}{})\n",
                   d.unconnected_tcp > 0 ? "connected " : "", d.open, limit,
                   d.unconnected_tcp > 0 ? plural(d.unconnected_tcp, "TCP socket not connected, ",
                                                  "TCP sockets not connected, ")
                                         : "",
                   plural(others, "other socket", "other sockets"));
    } else {
        fmt::print("  {}, {}, {} left to the kernel; {} of {} descriptors in use, {}\n",
                   plural(p.connections.size(), "connection", "connections"),
                   plural(p.listeners.size(), "listener", "listeners"), p.orphans.size(), d.open,
                   limit, plural(d.sockets, "socket", "sockets"));
        fmt::print("  states: {}\n", states_line(p));
    }
    if (verbose && !(p.listeners.empty() && p.connections.empty() && p.orphans.empty())) {
        print_socket_table(p);
    }
    for (const auto& f : p.findings) {
        print_wrapped(fmt::format("{}: ", to_string(f.kind)), printable(f.summary), 2);
        // The evidence names each socket's fd; the list is for what it does not show.
        const auto named = static_cast<std::size_t>(
            std::count_if(f.evidence.begin(), f.evidence.end(),
                          [](const std::string& line) { return line.starts_with("fd "); }));
        if (f.fds.size() > named) fmt::print("    {}\n", fd_list(f.fds));
        for (const auto& line : f.evidence)
            print_wrapped("", printable(line), 4);
        print_wrapped("what to change: ", f.advice, 4);
    }
    for (const auto& n : p.notes)
        print_wrapped("note: ", printable(n), 2);
    fmt::print("  {}\n", findings_line(p));
}

void print_changes(const diag::process_snapshot& p) {
    if (p.changes.empty()) {
        fmt::print("process {} ({}): no change; {}\n", p.pid, command_of(p), findings_line(p));
        return;
    }
    fmt::print("process {} ({}):\n", p.pid, command_of(p));
    for (const auto& c : p.changes)
        print_wrapped("", printable(c), 2);
    fmt::print("  {}\n", findings_line(p));
}

void print_round_header(const std::map<int, diag::process_snapshot>& now,
                        const std::map<int, diag::process_snapshot>& before, bool all) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    char stamp[32] = "?";
    if (::localtime_r(&t, &tm) != nullptr) (void)std::strftime(stamp, sizeof stamp, "%T", &tm);
    fmt::print("--- {}\n", stamp);
    for (const auto& [pid, p] : before) {
        if (now.count(pid) == 0) {
            fmt::print("process {} ({}) {}\n", pid, command_of(p),
                       all ? "has exited or closed its last socket" : "has exited");
        }
    }
    if (all) {
        for (const auto& [pid, p] : now) {
            if (before.count(pid) == 0) {
                fmt::print("process {} ({}) is new\n", pid, command_of(p));
            }
        }
    }
}

void print_system_summary(const diag::system_snapshot& all,
                          const std::map<int, diag::process_snapshot>& processes) {
    std::size_t with = 0;
    std::size_t findings = 0;
    for (const auto& [pid, p] : processes) {
        with += p.findings.empty() ? 0 : 1;
        findings += p.findings.size();
    }
    fmt::print("examined {} with TCP or Unix stream sockets: {} with {}\n",
               plural(processes.size(), "process", "processes"), with,
               plural(findings, "finding", "findings"));
    if (all.unowned_orphans > 0) {
        fmt::print(
            "  {} left to the kernel on ports no process listens on (closed client "
            "connections)\n",
            plural(all.unowned_orphans, "socket", "sockets"));
    }
    for (const auto& n : all.notes)
        print_wrapped("note: ", printable(n), 2);
}

}  // namespace orderly::cli
