#include "proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "output.hpp"
#include "sys.hpp"

namespace load {

std::string read_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string s;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return s;
}

namespace {

// utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks.
std::optional<unsigned long long> stat_ticks(const std::string& path) {
    std::string s = read_file(path);
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    auto close_paren = s.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= s.size()) return std::nullopt;
    const char* p = s.c_str() + close_paren + 2;  // at field 3 (state)
    for (int field = 3; field < 14; ++field) {
        p = std::strchr(p, ' ');
        if (!p) return std::nullopt;
        ++p;
    }
    char* end = nullptr;
    unsigned long long utime = std::strtoull(p, &end, 10);
    unsigned long long stime = std::strtoull(end, nullptr, 10);
    return utime + stime;
}

double ticks_to_s(unsigned long long t) {
    return static_cast<double>(t) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The ksoftirqd/N kernel threads as (N, pid); they live as long as the machine, so once.
const std::vector<std::pair<std::size_t, pid_t>>& ksoftirqd_pids() {
    static const std::vector<std::pair<std::size_t, pid_t>> pids = [] {
        std::vector<std::pair<std::size_t, pid_t>> v;
        DIR* d = opendir("/proc");
        if (!d) return v;
        while (dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe): one thread
            char* end = nullptr;
            long pid = std::strtol(e->d_name, &end, 10);
            if (pid <= 0 || *end != '\0') continue;
            std::string comm = read_file(fmt::format("/proc/{}/comm", pid));
            if (comm.rfind("ksoftirqd/", 0) == 0) {
                v.emplace_back(std::strtoul(comm.c_str() + 10, nullptr, 10),
                               static_cast<pid_t>(pid));
            }
        }
        closedir(d);
        return v;
    }();
    return pids;
}

// The CPUs `pid` may run on (0: this process).
std::vector<bool> allowed_cpus(pid_t pid) {
    std::vector<bool> out;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(pid, sizeof set, &set) != 0) return out;
    for (int i = 0; i < CPU_SETSIZE; ++i) {
        if (CPU_ISSET(i, &set)) {
            out.resize(static_cast<std::size_t>(i) + 1);
            out[static_cast<std::size_t>(i)] = true;
        }
    }
    return out;
}

}  // namespace

std::optional<double> proc_cpu_s(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto t = stat_ticks(fmt::format("/proc/{}/stat", pid));
    if (!t) return std::nullopt;
    return ticks_to_s(*t);
}

std::optional<std::int64_t> proc_rss_kib(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    std::string s = read_file(fmt::format("/proc/{}/status", pid));
    auto at = s.find("VmRSS:");
    if (at == std::string::npos) return std::nullopt;
    return std::strtoll(s.c_str() + at + 6, nullptr, 10);
}

bool process_gone(pid_t pid) {
    std::string s = read_file(fmt::format("/proc/{}/stat", pid));
    auto p = s.rfind(')');
    return s.empty() || p == std::string::npos || p + 2 >= s.size() || s[p + 2] == 'Z' ||
           s[p + 2] == 'X';
}

namespace {

// Times CPU `cpu` entered any cpuidle state (sum of /sys/.../cpuidle/stateK/usage).
std::uint64_t cpuidle_entries(std::size_t cpu) {
    std::uint64_t total = 0;
    for (int k = 0; k < 16; ++k) {
        std::string v =
            read_file(fmt::format("/sys/devices/system/cpu/cpu{}/cpuidle/state{}/usage", cpu, k));
        if (v.empty()) break;
        total += std::strtoull(v.c_str(), nullptr, 10);
    }
    return total;
}

// The line of `text` that starts (after blanks) with `label`: one count per CPU, in order.
template <class Set>
void per_cpu_counts(const std::string& text, std::string_view label,
                    std::vector<machine_cpu::per_cpu>& cpus, Set set) {
    std::size_t at = text.find(label);
    if (at == std::string::npos) return;
    const char* q = text.c_str() + at + label.size();
    for (auto& pc : cpus) {
        char* end = nullptr;
        std::uint64_t n = std::strtoull(q, &end, 10);
        if (end == q) return;
        set(pc, n);
        q = end;
    }
}

}  // namespace

std::optional<machine_cpu> read_machine_cpu() {
    std::string s = read_file("/proc/stat");
    if (s.rfind("cpu ", 0) != 0) return std::nullopt;
    // cpu  user nice system idle iowait irq softirq steal ...
    unsigned long long v[8] = {};
    const char* p = s.c_str() + 4;
    for (auto& x : v) {
        char* end = nullptr;
        x = std::strtoull(p, &end, 10);
        if (end == p) return std::nullopt;
        p = end;
    }
    machine_cpu m;
    m.busy_s = ticks_to_s(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    m.softirq_s = ticks_to_s(v[6]);
    // The per-CPU lines "cpuN user nice system idle iowait irq softirq steal ...".
    for (std::size_t at = s.find("\ncpu"); at != std::string::npos; at = s.find("\ncpu", at + 1)) {
        const char* q = s.c_str() + at + 4;
        char* end = nullptr;
        (void)std::strtoul(q, &end, 10);
        if (end == q) continue;
        unsigned long long c[8] = {};
        q = end;
        for (auto& x : c) {
            x = std::strtoull(q, &end, 10);
            q = end;
        }
        machine_cpu::per_cpu pc;
        pc.busy_s = ticks_to_s(c[0] + c[1] + c[2] + c[5] + c[6] + c[7]);
        pc.idle_entries = cpuidle_entries(m.cpus.size());
        m.cpus.push_back(pc);
    }
    per_cpu_counts(read_file("/proc/softirqs"), "NET_RX:", m.cpus,
                   [](machine_cpu::per_cpu& pc, std::uint64_t n) { pc.net_rx = n; });
    per_cpu_counts(read_file("/proc/interrupts"), "RES:", m.cpus,
                   [](machine_cpu::per_cpu& pc, std::uint64_t n) { pc.resched = n; });
    for (auto [cpu, pid] : ksoftirqd_pids()) {
        auto t = stat_ticks(fmt::format("/proc/{}/stat", pid));
        if (!t) continue;
        m.ksoftirqd_s += ticks_to_s(*t);
        if (cpu < m.cpus.size()) m.cpus[cpu].ksoftirqd_s = ticks_to_s(*t);
    }
    return m;
}

void cpu_meter::start() {
    // The CPUs this run occupies: the client's and the server's (all of them when unpinned).
    used_ = allowed_cpus(0);
    auto srv = server_pid_ > 0 ? allowed_cpus(server_pid_) : std::vector<bool>{};
    if (srv.size() > used_.size()) used_.resize(srv.size());
    for (std::size_t i = 0; i < srv.size(); ++i)
        used_[i] = used_[i] || srv[i];
    m0_ = read_machine_cpu();
    srv0_ = proc_cpu_s(server_pid_);
    cli0_ = self_cpu_s();
}

void cpu_meter::stop() {
    cli1_ = self_cpu_s();
    srv1_ = proc_cpu_s(server_pid_);
    m1_ = read_machine_cpu();
}

std::optional<double> cpu_meter::server_s() const {
    if (!srv0_ || !srv1_) return std::nullopt;
    return *srv1_ - *srv0_;
}

void cpu_meter::put(double elapsed_s) const {
    auto share = [&](std::optional<double> s) -> std::optional<double> {
        if (!s || elapsed_s <= 0) return std::nullopt;
        return *s / elapsed_s;
    };
    auto srv = server_s();
    out().num("client_cpu_s", client_s());
    // Near 1.0 means the client used its whole core: the number is then a bound on the client,
    // not a measurement of the server.
    out().num("client_cpu_share", share(client_s()));
    out().num("server_cpu_s", srv);
    out().num("server_cpu_share", share(srv));
    if (!m0_ || !m1_ || elapsed_s <= 0) return;
    double cpus = static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    out().num("ksoftirqd_cpu_s", m1_->ksoftirqd_s - m0_->ksoftirqd_s);
    out().num("softirq_share", (m1_->softirq_s - m0_->softirq_s) / elapsed_s / cpus);
    // Other load on the CPUs this run occupies: their busy time that is neither client, server
    // nor their ksoftirqd. Tick-sampled (1/CLK_TCK) against exact client time: a few ticks of
    // noise, so clamped at 0.
    double busy = 0, ksoft = 0, used = 0;
    for (std::size_t i = 0; i < m0_->cpus.size() && i < m1_->cpus.size(); ++i) {
        if (i >= used_.size() || !used_[i]) continue;
        busy += m1_->cpus[i].busy_s - m0_->cpus[i].busy_s;
        ksoft += m1_->cpus[i].ksoftirqd_s - m0_->cpus[i].ksoftirqd_s;
        used += 1;
    }
    if (used == 0) return;
    double foreign = busy - client_s() - srv.value_or(0) - ksoft;
    out().num("foreign_cpu_share", std::max(0.0, foreign) / elapsed_s / used);
}

void cpu_meter::put_per_cpu(double elapsed_s, double messages) const {
    if (!m0_ || !m1_ || elapsed_s <= 0 || messages <= 0) return;
    for (std::size_t i = 0; i < m0_->cpus.size() && i < m1_->cpus.size(); ++i) {
        const auto& a = m0_->cpus[i];
        const auto& b = m1_->cpus[i];
        auto per_msg = [&](std::uint64_t x, std::uint64_t y) {
            return static_cast<double>(y - x) / messages;
        };
        out().num(fmt::format("cpu{}_busy_share", i), (b.busy_s - a.busy_s) / elapsed_s);
        out().num(fmt::format("cpu{}_net_rx_per_msg", i), per_msg(a.net_rx, b.net_rx));
        out().num(fmt::format("cpu{}_resched_ipis_per_msg", i), per_msg(a.resched, b.resched));
        out().num(fmt::format("cpu{}_idle_entries_per_msg", i),
                  per_msg(a.idle_entries, b.idle_entries));
    }
}

namespace {

// One counter from the "Header: names\nHeader: values" pairs of /proc/net/snmp and netstat.
std::optional<std::int64_t> net_counter(const char* file, std::string_view prefix,
                                        std::string_view name) {
    std::string s = read_file(file);
    std::size_t pos = 0;
    while (pos < s.size()) {
        auto eol = s.find('\n', pos);
        if (eol == std::string::npos) eol = s.size();
        std::string_view names(s.data() + pos, eol - pos);
        pos = eol + 1;
        if (names.substr(0, prefix.size()) != prefix) continue;
        auto eol2 = s.find('\n', pos);
        if (eol2 == std::string::npos) eol2 = s.size();
        std::string_view values(s.data() + pos, eol2 - pos);
        // Walk both lines word by word.
        std::size_t ni = 0;
        std::size_t vi = 0;
        while (ni < names.size() && vi < values.size()) {
            auto ne = names.find(' ', ni);
            auto ve = values.find(' ', vi);
            if (ne == std::string_view::npos) ne = names.size();
            if (ve == std::string_view::npos) ve = values.size();
            if (names.substr(ni, ne - ni) == name) {
                return std::strtoll(std::string(values.substr(vi, ve - vi)).c_str(), nullptr, 10);
            }
            ni = ne + 1;
            vi = ve + 1;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace

tcp_counters read_tcp_counters() {
    return {net_counter("/proc/net/snmp", "Tcp:", "OutRsts"),
            net_counter("/proc/net/netstat", "TcpExt:", "TCPAbortOnClose"),
            net_counter("/proc/net/netstat", "TcpExt:", "TCPAbortOnData")};
}

void put_tcp_deltas(const tcp_counters& before, const tcp_counters& after) {
    auto delta = [](auto a, auto b) -> std::optional<double> {
        if (!a || !b) return std::nullopt;
        return static_cast<double>(*b - *a);
    };
    // System-wide counters: anything else running on the machine shows up here too.
    out().num("system_tcp_out_rsts_delta", delta(before.out_rsts, after.out_rsts));
    out().num("system_tcp_abort_on_close_delta",
              delta(before.abort_on_close, after.abort_on_close));
    out().num("system_tcp_abort_on_data_delta", delta(before.abort_on_data, after.abort_on_data));
}

namespace {

double thread_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// ns per 1000 steps of a dependent xorshift chain: the core's speed on plain arithmetic.
double probe_alu() {
    constexpr int steps = 2'000'000;
    std::uint64_t x = 88172645463325252ull;
    double best = 1e300;
    for (int rep = 0; rep < 3; ++rep) {  // best of three: a timer tick does not count
        double t0 = thread_ns();
        for (int i = 0; i < steps; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        best = std::min(best, thread_ns() - t0);
    }
    volatile std::uint64_t sink = x;  // keeps the loop
    (void)sink;
    return best / (steps / 1000.0);
}

}  // namespace

std::vector<double> probe_cpu_speed() {
    std::vector<double> out;
    cpu_set_t saved;
    CPU_ZERO(&saved);
    if (sched_getaffinity(0, sizeof saved, &saved) != 0) return out;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long cpu = 0; cpu < n && cpu < CPU_SETSIZE; ++cpu) {
        // Only where we may run anyway: as SCHED_FIFO, moving onto a CPU that another FIFO task
        // of the same priority keeps busy would wait for it forever.
        if (!CPU_ISSET(static_cast<int>(cpu), &saved)) {
            out.push_back(0);
            continue;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(static_cast<int>(cpu), &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            out.push_back(0);
            continue;
        }
        out.push_back(probe_alu());
    }
    (void)sched_setaffinity(0, sizeof saved, &saved);
    return out;
}

void put_cpu_speed() {
    auto speed = probe_cpu_speed();
    for (std::size_t i = 0; i < speed.size(); ++i) {
        if (speed[i] > 0) out().num(fmt::format("cpu{}_probe_ns", i), speed[i]);
    }
}

}  // namespace load
