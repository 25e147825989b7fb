// What the workloads read about the server and the machine: /proc and /sys (CPU time, RSS, where
// the kernel's work ran, TCP counters) and how fast the CPUs run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace load {

// Readers return nothing (nullopt, empty) when the process or file is gone.
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
        double busy_s = 0, ksoftirqd_s = 0;
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
    // softirq_share and foreign_cpu_share (the busy time of the CPUs client and server may run
    // on that is neither theirs nor ksoftirqd's, as a share of those CPUs: other load, which
    // disturbs the measurement) over `elapsed_s`.
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
    std::vector<bool> used_;  // by CPU number
};

// How fast each CPU this process may run on runs right now (0 for the others), in ns of thread
// CPU time per 1000 steps of a dependent arithmetic chain, measured by moving this thread to each
// of them in turn (~10 ms each; the affinity is restored after). On an idle machine it is
// constant; when it is not, the vCPU itself got slower (the host: a busy SMT sibling, frequency)
// and so does everything measured then.
[[nodiscard]] std::vector<double> probe_cpu_speed();
// Adds cpuN_probe_ns for every CPU this process may run on.
void put_cpu_speed();

// Deltas of system-wide TCP counters over a workload (/proc/net/snmp, /proc/net/netstat).
struct tcp_counters {
    std::optional<std::int64_t> out_rsts, abort_on_close, abort_on_data;
};
[[nodiscard]] tcp_counters read_tcp_counters();
// Adds system_tcp_*_delta fields to the output.
void put_tcp_deltas(const tcp_counters& before, const tcp_counters& after);

}  // namespace load
