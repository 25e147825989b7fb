#include "orderly/diag/process.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <string>

#include "orderly/core/errc.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly::diag {
namespace {

std::string proc_path(int pid, std::string_view rest) {
    std::string p = "/proc/" + std::to_string(pid);
    p += rest;
    return p;
}

// A whole small /proc file; /proc files report size 0, so read until EOF.
result<std::string> read_text(const std::string& path) {
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail(errno_code(errno));
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(errno_code(errno));
        }
        if (n == 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

template <class Int>
std::optional<Int> to_number(std::string_view s) {
    Int v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

// Calls fn(line) for each line of `text`, without its newline.
template <class F>
void for_each_line(std::string_view text, F&& fn) {
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        fn(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

std::string user_name(std::uint32_t uid) {
    passwd pw{};
    passwd* found = nullptr;
    std::string buf(16384, '\0');
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        return found->pw_name;
    }
    return std::to_string(uid);
}

std::uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_ino;
}

failure<error_info> no_such_process(int pid) {
    return fail(errno_code(ESRCH), "no process with PID " + std::to_string(pid) +
                                       " (it may have exited; `ps -e` lists the running ones)");
}

failure<error_info> no_permission(const process_info& p, const std::string& what) {
    const std::uint32_t me = ::geteuid();
    const std::string who = p.uid == 0 ? "as root" : "as root or as " + p.user;
    return fail(errno_code(EACCES), "no permission to read " + what + ": process " +
                                        std::to_string(p.pid) + " (" + p.name + ") runs as user " +
                                        p.user + " (uid " + std::to_string(p.uid) +
                                        ") and this check as user " + user_name(me) + " (uid " +
                                        std::to_string(me) + "); run it " + who);
}

// Fills open_descriptors and sockets from /proc/PID/fd.
result<void, error_info> read_descriptors(process_info& p) {
    namespace fs = std::filesystem;
    const std::string dir = proc_path(p.pid, "/fd");
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
        if (ec == std::errc::permission_denied) return no_permission(p, dir);
        if (ec == std::errc::no_such_file_or_directory) return no_such_process(p.pid);
        return fail(ec, "cannot list " + dir + ": " + ec.message());
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const std::string name = it->path().filename().string();
        const auto fd = to_number<int>(name);
        if (!fd) continue;
        ++p.open_descriptors;
        char target[64];
        const ssize_t n = ::readlink(it->path().c_str(), target, sizeof target - 1);
        if (n <= 0) continue;  // closed meanwhile
        const std::string_view link(target, static_cast<std::size_t>(n));
        // Reading our own /proc/self/fd lists the descriptor that reads it: not one of ours.
        if (link == dir) {
            --p.open_descriptors;
            continue;
        }
        if (auto ino = socket_inode_of(link)) {
            p.sockets.push_back({*fd, *ino, {}});
        }
    }
    if (ec == std::errc::no_such_file_or_directory) return no_such_process(p.pid);
    std::sort(p.sockets.begin(), p.sockets.end(),
              [](const socket_descriptor& a, const socket_descriptor& b) { return a.fd < b.fd; });
    return {};
}

}  // namespace

std::optional<std::uint64_t> socket_inode_of(std::string_view link) {
    constexpr std::string_view prefix = "socket:[";
    if (link.size() <= prefix.size() + 1 || link.substr(0, prefix.size()) != prefix ||
        link.back() != ']') {
        return std::nullopt;
    }
    return to_number<std::uint64_t>(link.substr(prefix.size(), link.size() - prefix.size() - 1));
}

descriptor_limit parse_descriptor_limit(std::string_view text) {
    descriptor_limit out;
    constexpr std::string_view label = "Max open files";
    for_each_line(text, [&](std::string_view line) {
        if (line.substr(0, label.size()) != label) return;
        const auto w = words(line.substr(label.size()));
        if (w.size() < 2) return;
        out.soft = w[0] == "unlimited" ? std::nullopt : to_number<std::uint64_t>(w[0]);
        out.hard = w[1] == "unlimited" ? std::nullopt : to_number<std::uint64_t>(w[1]);
    });
    return out;
}

tcp_counters parse_tcp_counters(std::string_view text) {
    tcp_counters out;
    std::vector<std::string_view> names;
    for_each_line(text, [&](std::string_view line) {
        if (line.substr(0, 7) != "TcpExt:") return;
        auto w = words(line.substr(7));
        if (names.empty()) {
            names = std::move(w);
            return;
        }
        for (std::size_t i = 0; i < names.size() && i < w.size(); ++i) {
            const auto v = to_number<std::uint64_t>(w[i]);
            if (names[i] == "ListenOverflows") out.listen_overflows = v;
            if (names[i] == "ListenDrops") out.listen_drops = v;
            if (names[i] == "TCPAbortOnClose") out.abort_on_close = v;
            if (names[i] == "TCPAbortOnData") out.abort_on_data = v;
        }
    });
    return out;
}

std::optional<std::uint32_t> parse_status_uid(std::string_view text) {
    std::optional<std::uint32_t> uid;
    for_each_line(text, [&](std::string_view line) {
        if (line.substr(0, 4) != "Uid:") return;
        const auto w = words(line.substr(4));
        if (!w.empty()) uid = to_number<std::uint32_t>(w[0]);
    });
    return uid;
}

result<process_info, error_info> read_process(int pid) {
    if (pid <= 0) {
        return fail(make_error_code(errc::invalid_argument),
                    "PID " + std::to_string(pid) + " is not a process ID (they start at 1)");
    }
    process_info p;
    p.pid = pid;
    auto status = read_text(proc_path(pid, "/status"));
    if (!status) {
        if (status.error() == std::errc::no_such_file_or_directory) return no_such_process(pid);
        return fail(status.error(),
                    "cannot read " + proc_path(pid, "/status") + ": " + status.error().message());
    }
    p.uid = parse_status_uid(*status).value_or(0);
    p.user = user_name(p.uid);
    if (auto comm = read_text(proc_path(pid, "/comm"))) {
        p.name = *comm;
        while (!p.name.empty() && p.name.back() == '\n')
            p.name.pop_back();
    }
    if (auto cmd = read_text(proc_path(pid, "/cmdline"))) {
        p.command = *cmd;
        while (!p.command.empty() && p.command.back() == '\0')
            p.command.pop_back();
        std::replace(p.command.begin(), p.command.end(), '\0', ' ');
    }
    if (auto r = read_descriptors(p); !r) return failure{r.error()};
    if (auto limits = read_text(proc_path(pid, "/limits"))) {
        p.limit = parse_descriptor_limit(*limits);
    }
    p.netns = netns_inode(proc_path(pid, "/ns/net"));
    return p;
}

std::optional<std::string> socket_protocol(int pid, int fd, std::uint64_t inode) {
    const std::string path = proc_path(pid, "/fd/" + std::to_string(fd));
    char name[64];
    const ssize_t n = ::getxattr(path.c_str(), "system.sockprotoname", name, sizeof name - 1);
    if (n <= 0) return std::nullopt;
    // The descriptor may have been closed and reused meanwhile: the name must be inode's.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_ino != inode) return std::nullopt;
    std::string out(name, static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '\0')
        out.pop_back();
    return out;
}

std::vector<int> list_processes() {
    namespace fs = std::filesystem;
    std::vector<int> pids;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (auto pid = to_number<int>(it->path().filename().string())) pids.push_back(*pid);
    }
    std::sort(pids.begin(), pids.end());
    return pids;
}

std::uint64_t own_netns() {
    return netns_inode("/proc/self/ns/net");
}

tcp_counters read_tcp_counters(int pid) {
    auto text = read_text(proc_path(pid, "/net/netstat"));
    return text ? parse_tcp_counters(*text) : tcp_counters{};
}

}  // namespace orderly::diag
