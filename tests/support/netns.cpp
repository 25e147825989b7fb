#include "support/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace orderly::test {
namespace {

using steady = std::chrono::steady_clock;

constexpr std::string_view ns_prefix = "orderly-f-";
constexpr const char* netns_dir = "/run/netns";
constexpr const char* nft_table = "inet orderly_faults";

std::string ipv4_text(std::uint32_t host_order) {
    return std::to_string(host_order >> 24U) + "." + std::to_string((host_order >> 16U) & 255U) +
           "." + std::to_string((host_order >> 8U) & 255U) + "." +
           std::to_string(host_order & 255U);
}

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// A test that writes to a child that already exited must get EPIPE, not die of SIGPIPE.
void ignore_sigpipe_once() {
    static std::once_flag once;
    std::call_once(once, [] { (void)std::signal(SIGPIPE, SIG_IGN); });
}

std::string first_line(const process_result& r) {
    std::string text = r.err.empty() ? r.out : r.err;
    if (const auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
    if (r.status == -1 && text.empty()) text = "could not start";
    if (r.timed_out) text += " (killed after its timeout)";
    return text;
}

// Namespaces named after a pid that no longer runs were left by a test that crashed or was killed
// before its destructor ran: delete them, so they neither pile up nor hold veth pairs.
void delete_stale_namespaces() {
    static std::once_flag once;
    std::call_once(once, [] {
        DIR* dir = ::opendir(netns_dir);
        if (dir == nullptr) return;
        std::vector<std::string> stale;
        while (const dirent* e = ::readdir(dir)) {
            const std::string_view name = e->d_name;
            if (name.substr(0, ns_prefix.size()) != ns_prefix) continue;
            const std::string rest(name.substr(ns_prefix.size()));
            const long pid = std::strtol(rest.c_str(), nullptr, 10);
            if (pid <= 0) continue;
            if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
                stale.emplace_back(name);
            }
        }
        ::closedir(dir);
        for (const auto& name : stale)
            (void)run_process({"ip", "netns", "delete", name});
    });
}

}  // namespace

// ---- child processes ----

child_process::child_process(const std::vector<std::string>& argv, const options& opts) {
    ignore_sigpipe_once();
    int in_pipe[2] = {-1, -1};
    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    auto cleanup = [&] {
        for (int* fds : {in_pipe, out_pipe, err_pipe}) {
            close_fd(fds[0]);
            close_fd(fds[1]);
        }
    };
    if ((opts.stdin_file.empty() && ::pipe2(in_pipe, O_CLOEXEC) != 0) ||
        (opts.stdout_file.empty() && ::pipe2(out_pipe, O_CLOEXEC) != 0) ||
        ::pipe2(err_pipe, O_CLOEXEC) != 0) {
        error_ = std::string("pipe2: ") + std::strerror(errno);
        cleanup();
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (opts.stdin_file.empty()) {
        posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, opts.stdin_file.c_str(), O_RDONLY, 0);
    }
    if (opts.stdout_file.empty()) {
        posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, opts.stdout_file.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    started_at_ = steady::now();
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        error_ = "posix_spawnp " + argv.front() + ": " + std::strerror(rc);
        cleanup();
        return;
    }
    pid_ = pid;
    close_fd(in_pipe[0]);
    close_fd(out_pipe[1]);
    close_fd(err_pipe[1]);
    stdin_w_ = in_pipe[1];
    stdout_r_ = out_pipe[0];
    stderr_r_ = err_pipe[0];
}

child_process::~child_process() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    close_fd(stdin_w_);
    close_fd(stdout_r_);
    close_fd(stderr_r_);
}

bool child_process::write_stdin(std::string_view data) {
    while (!data.empty() && stdin_w_ >= 0) {
        const ssize_t n = ::write(stdin_w_, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return data.empty();
}

void child_process::close_stdin() noexcept {
    close_fd(stdin_w_);
}

process_result child_process::wait(steady::duration timeout) {
    process_result r;
    if (pid_ <= 0) {
        r.err = error_;
        return r;
    }
    const auto until = started_at_ + timeout;
    // Collect stdout and stderr until both end (the child exited or closed them), then reap.
    while (stdout_r_ >= 0 || stderr_r_ >= 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
        if (left <= 0) break;
        pollfd fds[2];
        nfds_t n = 0;
        if (stdout_r_ >= 0) fds[n++] = {stdout_r_, POLLIN, 0};
        if (stderr_r_ >= 0) fds[n++] = {stderr_r_, POLLIN, 0};
        const int rc = ::poll(fds, n, static_cast<int>(std::min<long long>(left, 100)));
        if (rc < 0 && errno != EINTR) break;
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            char buf[65536];
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            int& fd = fds[i].fd == stdout_r_ ? stdout_r_ : stderr_r_;
            std::string& sink = &fd == &stdout_r_ ? r.out : r.err;
            if (got <= 0) {
                close_fd(fd);
            } else {
                sink.append(buf, static_cast<std::size_t>(got));
            }
        }
    }
    int status = 0;
    for (;;) {
        const pid_t w = ::waitpid(pid_, &status, WNOHANG);
        if (w == pid_) break;
        if (w < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (steady::now() >= until) {
            r.timed_out = true;
            ::kill(pid_, SIGKILL);
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    r.ended_at = steady::now();
    r.took = r.ended_at - started_at_;
    pid_ = -1;
    close_fd(stdin_w_);
    close_fd(stdout_r_);
    close_fd(stderr_r_);
    if (status == -1) {
        r.status = -1;
    } else if (WIFEXITED(status)) {
        r.status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r.status = 128 + WTERMSIG(status);
    }
    return r;
}

process_result run_process(const std::vector<std::string>& argv, std::string_view input,
                           steady::duration timeout) {
    child_process child(argv, {});
    if (!child.started()) {
        process_result r;
        r.err = child.error();
        return r;
    }
    // Inputs here are a few lines (nft rules): far below the pipe's capacity, so writing all of
    // it before reading the child's output cannot deadlock.
    (void)child.write_stdin(input);
    child.close_stdin();
    return child.wait(timeout);
}

// ---- the namespaces ----

netns_pair::scoped_enter::scoped_enter(const netns_pair& net, side s) {
    home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ < 0) throw std::system_error(errno, std::generic_category(), "open own netns");
    const std::string path = std::string(netns_dir) + "/" + net.name(s);
    const int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
        const int err = errno;
        if (target >= 0) ::close(target);
        close_fd(home_);
        throw std::system_error(err, std::generic_category(), "setns " + path);
    }
    ::close(target);
}

netns_pair::scoped_enter::~scoped_enter() {
    // A thread left in the wrong namespace would make every later socket of the test lie about
    // where it lives: better to stop the test binary at once.
    if (::setns(home_, CLONE_NEWNET) != 0) std::abort();
    ::close(home_);
}

netns_pair::netns_pair() {
    static std::atomic<unsigned> counter{0};
    const unsigned n = counter.fetch_add(1);
    const auto pid = static_cast<unsigned>(::getpid());
    const std::string base = std::string(ns_prefix) + std::to_string(pid) + "-" + std::to_string(n);
    ns_a_ = base + "-a";
    ns_b_ = base + "-b";
    // A /30 in 10/8 from the pid and the counter: 22 bits of subnet number.
    subnet_ = (10U << 24U) | (((pid * 8U + n) & 0x3FFFFFU) << 2U);

    if (::geteuid() != 0) {
        reason_skip_ =
            "fault injection needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create "
            "network namespaces; running as uid " +
            std::to_string(::geteuid());
        return;
    }
    delete_stale_namespaces();
    if (auto r = run_process({"ip", "netns", "add", ns_a_}); r.status != 0) {
        reason_skip_ = "`ip netns add` is not permitted here: " + first_line(r);
        return;
    }
    created_a_ = true;
    if (!run({"ip", "netns", "add", ns_b_})) return;
    created_b_ = true;

    const std::string addr_a = ipv4_text(subnet_ + 1) + "/30";
    const std::string addr_b = ipv4_text(subnet_ + 2) + "/30";
    // Made directly inside the namespaces: the names never appear on the host, so fixed names
    // are fine. One segment per packet (gso_max_segs 1) so that `loss` drops segments, not
    // 64 KiB super-packets.
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "link", "add", "o-a", "netns", ns_a_, "type", "veth", "peer", "name", "o-b", "netns",
         ns_b_},
        {"ip", "-n", ns_a_, "link", "set", "dev", "o-a", "gso_max_segs", "1"},
        {"ip", "-n", ns_b_, "link", "set", "dev", "o-b", "gso_max_segs", "1"},
        {"ip", "-n", ns_a_, "addr", "add", addr_a, "dev", "o-a"},
        {"ip", "-n", ns_b_, "addr", "add", addr_b, "dev", "o-b"},
        {"ip", "-n", ns_a_, "link", "set", "dev", "lo", "up"},
        {"ip", "-n", ns_b_, "link", "set", "dev", "lo", "up"},
        {"ip", "-n", ns_a_, "link", "set", "dev", "o-a", "up"},
        {"ip", "-n", ns_b_, "link", "set", "dev", "o-b", "up"},
    };
    for (const auto& step : steps) {
        if (!run(step)) return;
    }
    // IPv6 is optional (a kernel may have it disabled): the tests that need it skip without it.
    // nodad: usable at once, not after duplicate address detection's second or so.
    ipv6_ = run_process({"ip", "-n", ns_a_, "addr", "add", ipv6_text(side::a) + "/64", "dev", "o-a",
                         "nodad"})
                    .status == 0 &&
            run_process({"ip", "-n", ns_b_, "addr", "add", ipv6_text(side::b) + "/64", "dev", "o-b",
                         "nodad"})
                    .status == 0;
    const std::string table = std::string("table ") + nft_table +
                              " {\n"
                              "  chain in { type filter hook input priority 0; policy accept; }\n"
                              "  chain out { type filter hook output priority 0; policy accept; }\n"
                              "}\n";
    for (side s : {side::a, side::b}) {
        if (!run(exec_argv(s, {"nft", "-f", "-"}), table)) return;
    }
    ready_ = true;
}

netns_pair::~netns_pair() {
    // Deleting a namespace deletes its veth end (and so the pair) and its rules. Sockets still
    // open elsewhere keep the namespace alive in the kernel until they close, harmlessly.
    if (created_a_) (void)run_process({"ip", "netns", "delete", ns_a_});
    if (created_b_) (void)run_process({"ip", "netns", "delete", ns_b_});
}

endpoint netns_pair::address(side s, std::uint16_t port) const {
    const std::uint32_t host = subnet_ + (s == side::a ? 1U : 2U);
    auto ep = endpoint::parse(ipv4_text(host) + ":" + std::to_string(port));
    return ep ? *ep : endpoint{};
}

std::string netns_pair::ipv6_text(side s) const {
    // fd6f:<subnet's upper 16 bits>:<lower 16 bits>::1 (A) or ::2 (B), one /64 per pair.
    static constexpr char hex[] = "0123456789abcdef";
    auto group = [](std::uint32_t v) {
        std::string g;
        for (int shift = 12; shift >= 0; shift -= 4)
            g += hex[(v >> static_cast<unsigned>(shift)) & 15U];
        return g;
    };
    return "fd6f:" + group(subnet_ >> 16U) + ":" + group(subnet_ & 0xffffU) +
           (s == side::a ? "::1" : "::2");
}

endpoint netns_pair::address6(side s, std::uint16_t port) const {
    auto ep = endpoint::parse("[" + ipv6_text(s) + "]:" + std::to_string(port));
    return ep ? *ep : endpoint{};
}

std::vector<std::string> netns_pair::exec_argv(side s, const std::vector<std::string>& argv) const {
    std::vector<std::string> out = {"ip", "netns", "exec", name(s)};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

bool netns_pair::run(const std::vector<std::string>& argv, std::string_view input) {
    const auto r = run_process(argv, input);
    if (r.status == 0) return true;
    std::string cmd;
    for (const auto& a : argv)
        cmd += (cmd.empty() ? "" : " ") + a;
    error_ = "`" + cmd + "` failed (" + std::to_string(r.status) + "): " + first_line(r);
    return false;
}

bool netns_pair::apply_rules(side s, const std::string& rules) {
    // One nft transaction: the old rules go and the new ones come at the same instant.
    std::string script = std::string("flush chain ") + nft_table + " in\nflush chain " + nft_table +
                         " out\n" + rules;
    return run(exec_argv(s, {"nft", "-f", "-"}), script);
}

bool netns_pair::partition(side s) {
    const std::string dev = veth(s);
    return apply_rules(s, std::string("add rule ") + nft_table + " in iifname \"" + dev +
                              "\" counter drop\nadd rule " + nft_table + " out oifname \"" + dev +
                              "\" counter drop\n");
}

bool netns_pair::reset(side s) {
    return apply_rules(s, std::string("add rule ") + nft_table + " in iifname \"" + veth(s) +
                              "\" meta l4proto tcp counter reject with tcp reset\n");
}

bool netns_pair::loss(side s, unsigned percent) {
    const std::string dev = veth(s);
    const std::string p = std::to_string(percent);
    return apply_rules(s, std::string("add rule ") + nft_table + " in iifname \"" + dev +
                              "\" numgen random mod 100 < " + p + " counter drop\nadd rule " +
                              nft_table + " out oifname \"" + dev + "\" numgen random mod 100 < " +
                              p + " counter drop\n");
}

bool netns_pair::black_hole(side s, const std::vector<endpoint>& to) {
    std::string rules;
    for (const endpoint& e : to) {
        const char* proto = e.family() == address_family::ipv6 ? "ip6" : "ip";
        rules += std::string("add rule ") + nft_table + " in " + proto + " daddr " + e.host() +
                 " tcp dport " + std::to_string(e.port()) +
                 " tcp flags & (syn | ack) == syn counter drop\n";
    }
    return apply_rules(s, rules);
}

bool netns_pair::heal(side s) {
    return apply_rules(s, "");
}

long long netns_pair::fault_hits(side s) {
    const auto r = run_process(exec_argv(s, {"nft", "list", "table", "inet", "orderly_faults"}));
    if (r.status != 0) return -1;
    long long hits = 0;
    constexpr std::string_view key = "counter packets ";
    for (auto at = r.out.find(key); at != std::string::npos; at = r.out.find(key, at + 1)) {
        hits += std::strtoll(r.out.c_str() + at + key.size(), nullptr, 10);
    }
    return hits;
}

std::string orderly_binary() {
    if (const char* env = std::getenv("ORDERLY_BIN"); env != nullptr && *env != '\0') return env;
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return {};
    std::string path(self, static_cast<std::size_t>(n));
    // <build>/tests/<exe>: up two levels to <build>.
    for (int i = 0; i < 2; ++i) {
        const auto slash = path.rfind('/');
        if (slash == std::string::npos) return {};
        path.resize(slash);
    }
    path += "/tools/orderly/orderly";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string{};
}

}  // namespace orderly::test
