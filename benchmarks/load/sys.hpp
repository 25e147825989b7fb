// What every workload needs from the system: clocks, /proc readers, sockets, an epoll set.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace load {

// ---- time (CLOCK_MONOTONIC) ----
[[nodiscard]] std::int64_t now_ns();
[[nodiscard]] double now_s();
// Milliseconds until `deadline` (seconds, monotonic), clamped to [0, cap].
[[nodiscard]] int ms_until(double deadline, int cap = 100);
// This process's user + system CPU time, in seconds.
[[nodiscard]] double self_cpu_s();

// ---- /proc: nothing (nullopt, empty) when the process or file is gone ----
[[nodiscard]] std::string read_file(const std::string& path);
// utime + stime of the whole process (all threads), in seconds.
[[nodiscard]] std::optional<double> proc_cpu_s(pid_t pid);
[[nodiscard]] std::optional<std::int64_t> proc_rss_kib(pid_t pid);
// A zombie counts as gone.
[[nodiscard]] bool process_gone(pid_t pid);

// The whole machine's CPU time from /proc/stat (tick-based, all CPUs summed) and the CPU time of
// the ksoftirqd threads, in seconds. Loopback network processing runs as a softirq, inline on the
// CPU that sent the packet (charged to that process) or deferred to ksoftirqd (charged to
// neither peer): the W2 output reports both so a run can say where the kernel work went, and the
// busy time nobody in the run accounts for is other load on the machine.
struct machine_cpu {
    double busy_s = 0;     // everything but idle and iowait
    double softirq_s = 0;  // the softirq column (tick samples that landed in a softirq)
    double ksoftirqd_s = 0;
    // Per CPU: busy seconds, NET_RX softirqs run (/proc/softirqs), rescheduling IPIs received
    // (/proc/interrupts RES: a wake-up sent from the other CPU) and cpuidle entries (the CPU
    // went idle: on a VM a halted vCPU must be woken by the host).
    struct per_cpu {
        double busy_s = 0;
        std::uint64_t net_rx = 0, resched = 0, idle_entries = 0;
    };
    std::vector<per_cpu> cpus;
};
[[nodiscard]] std::optional<machine_cpu> read_machine_cpu();

// CPU time over a measured interval: this process (the client), the server, the machine.
class cpu_meter {
  public:
    explicit cpu_meter(pid_t server_pid) : server_pid_(server_pid) {}
    void start();
    void stop();
    // Adds client_cpu_s, client_cpu_share, server_cpu_s, server_cpu_share, ksoftirqd_cpu_s,
    // softirq_share and foreign_cpu_share (the machine's busy time that is neither client, server
    // nor ksoftirqd: other load, which disturbs the measurement) over `elapsed_s`.
    void put(double elapsed_s) const;
    // Adds, per CPU N: cpuN_busy_share and, per message, cpuN_net_rx, cpuN_resched_ipis and
    // cpuN_idle_entries: where the kernel work ran and how often each side went to sleep.
    void put_per_cpu(double elapsed_s, double messages) const;
    [[nodiscard]] double client_s() const { return cli1_ - cli0_; }
    [[nodiscard]] std::optional<double> server_s() const;

  private:
    pid_t server_pid_;
    double cli0_ = 0, cli1_ = 0;
    std::optional<double> srv0_, srv1_;
    std::optional<machine_cpu> m0_, m1_;
};

// Deltas of system-wide TCP counters over a workload (/proc/net/snmp, /proc/net/netstat).
struct tcp_counters {
    std::optional<std::int64_t> out_rsts, abort_on_close, abort_on_data;
};
[[nodiscard]] tcp_counters read_tcp_counters();
// Adds system_tcp_*_delta fields to the output.
void put_tcp_deltas(const tcp_counters& before, const tcp_counters& after);

// strerror without its shared buffer (clang-tidy's concurrency-mt-unsafe, and the habit).
[[nodiscard]] const char* errstr(int err);

// ---- sockets ----
[[nodiscard]] inline bool is_reset(int err) {
    return err == ECONNRESET || err == EPIPE;
}
// Starts a non-blocking connect (optionally from `from`). Returns the descriptor (connect done or
// in progress) or -errno.
[[nodiscard]] int start_connect(const sockaddr_in& to, const sockaddr_in* from);
[[nodiscard]] int socket_error(int fd);
void set_nodelay(int fd);
// A pidfd for `pid` (readable once it exits), or -1.
[[nodiscard]] int open_pidfd(pid_t pid);

// One epoll set; a failing epoll_ctl is reported with set_error.
class poller {
  public:
    poller();
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;
    ~poller();

    void add(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_ADD, fd, ev, tag); }
    void mod(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_MOD, fd, ev, tag); }
    // Returns the number of ready events (0 on timeout or EINTR).
    int wait(int timeout_ms);
    [[nodiscard]] const epoll_event& event(int i) const {
        return events_[static_cast<std::size_t>(i)];
    }

  private:
    void ctl(int op, int fd, std::uint32_t ev, std::uint64_t tag);
    int fd_;
    std::vector<epoll_event> events_;
};

}  // namespace load
