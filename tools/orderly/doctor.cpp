// orderly doctor [PID...] [--all]: the connections a process fails to end, and why, read from
// netlink sock_diag and /proc through orderly::diag (the printing is in doctor_text.cpp).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "cli.hpp"
#include "doctor_text.hpp"
#include "orderly/diag/changes.hpp"
#include "orderly/diag/json.hpp"
#include "orderly/diag/snapshot.hpp"

namespace orderly::cli {
namespace {

struct doctor_config {
    std::vector<std::string> pids;
    bool all = false;
    std::string watch;
    unsigned count = 0;  // rounds of --watch; 0 = until SIGINT/SIGTERM
    bool json = false;
    std::string min_age = "1s";
    bool verbose = false;
};

std::optional<int> parse_pid(std::string_view text) {
    int pid = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc() || end != text.data() + text.size() || pid <= 0) return std::nullopt;
    return pid;
}

std::string check_pid(const std::string& text) {
    if (parse_pid(text)) return {};
    return "'" + text + "' is not a process ID (a whole number from 1 up, as `ps -e` lists them)";
}

// Looks closer together than this would keep a core busy with /proc and netlink dumps and
// compare snapshots taken before the kernel's timers could move anything.
constexpr std::chrono::milliseconds shortest_watch{100};

std::string check_watch_interval(const std::string& text) {
    auto d = parse_duration(text);
    if (!d) return check_duration(text);
    if (*d <= clock::duration::zero()) return "'" + text + "' must be longer than zero";
    if (*d < shortest_watch) {
        return "'" + text +
               "' is too short an interval between looks: use 100ms or more (e.g. --watch "
               "500ms)";
    }
    return {};
}

// CLI11's PositiveNumber would answer "Value 0 not in range 0.000000 to 1.79769e308" in full.
std::string check_count(const std::string& text) {
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size() && n > 0) return {};
    return "'" + text + "' is not a number of looks (a whole number from 1 up, e.g. --count 10)";
}

// One round: the snapshots of the processes asked for, by PID. Processes that have exited are
// dropped (and said so) after the first round; in the first, an error ends the command.
struct round_result {
    std::map<int, diag::process_snapshot> processes;
    diag::system_snapshot all;  // --all: everything but the processes
    int error = exit_ok;
};

int error_exit(const std::string& message, const std::error_code& ec, int pid) {
    print_error(message);
    if (ec == errno_code(ESRCH) || ec == make_error_code(errc::invalid_argument)) {
        return exit_usage;  // an unknown PID is a usage error that names it
    }
    if (ec == errno_code(EACCES) || ec == errno_code(EPERM)) {
        fmt::print(stderr, "  e.g. sudo orderly doctor {}\n", pid);
    }
    return exit_failure;
}

round_result take_round(const doctor_config& cfg, const std::vector<int>& pids,
                        const diag::snapshot_options& opts, bool first) {
    round_result r;
    if (cfg.all) {
        auto all = diag::snapshot_all(opts);
        if (!all) {
            print_error(all.error().message());
            r.error = exit_failure;
            return r;
        }
        for (auto& p : all->processes)
            r.processes.emplace(p.pid, std::move(p));
        all->processes.clear();
        r.all = std::move(*all);
        return r;
    }
    for (const int pid : pids) {
        auto s = diag::snapshot(pid, opts);
        if (s) {
            r.processes.emplace(pid, std::move(*s));
            continue;
        }
        if (!first && s.error().code == errno_code(ESRCH)) continue;  // exited while watched
        r.error = error_exit(s.error().message(), s.error().code, pid);
        return r;
    }
    return r;
}

bool any_findings(const round_result& r) {
    for (const auto& [pid, p] : r.processes) {
        if (!p.findings.empty()) return true;
    }
    return false;
}

// `before`: the previous look of --watch (nullptr for the first), whose processes get only what
// changed; the others get their whole block. --all leaves out processes without findings (and,
// after the first look, those where nothing changed) unless -v.
void print_round(const doctor_config& cfg, const round_result& r, const round_result* before) {
    for (const auto& [pid, p] : r.processes) {
        if (cfg.json) {
            fmt::print("{}\n", diag::to_json(p));
            continue;
        }
        const bool seen = before != nullptr && before->processes.count(pid) != 0;
        if (seen) {
            if (!cfg.all || cfg.verbose || !p.changes.empty()) print_changes(p);
        } else if (!cfg.all || cfg.verbose || !p.findings.empty()) {
            print_process(p, cfg.verbose);
        }
    }
    if (cfg.all && !cfg.json) print_system_summary(r.all, r.processes);
    (void)std::fflush(stdout);
}

// Sleeps `d` in short slices so that SIGINT/SIGTERM end the wait at once.
void sleep_unless_stopped(clock::duration d) {
    const auto until = clock::now() + d;
    while (!stop_requested() && clock::now() < until) {
        std::this_thread::sleep_for(
            std::min<clock::duration>(until - clock::now(), std::chrono::milliseconds(100)));
    }
}

int run_doctor(const doctor_config& cfg) {
    ignore_sigpipe();
    std::vector<int> pids;
    for (const auto& text : cfg.pids)
        pids.push_back(*parse_pid(text));
    const diag::snapshot_options opts{
        std::chrono::duration_cast<std::chrono::milliseconds>(*parse_duration(cfg.min_age))};

    round_result now = take_round(cfg, pids, opts, true);
    if (now.error != exit_ok) return now.error;
    print_round(cfg, now, nullptr);
    if (cfg.watch.empty()) return any_findings(now) ? exit_findings : exit_ok;

    install_stop_signals();
    const auto interval = *parse_duration(cfg.watch);
    for (unsigned round = 2; cfg.count == 0 || round <= cfg.count; ++round) {
        sleep_unless_stopped(interval);
        if (stop_requested()) break;
        round_result next = take_round(cfg, pids, opts, false);
        if (next.error != exit_ok) return next.error;
        for (auto& [pid, p] : next.processes) {
            const auto before = now.processes.find(pid);
            if (before == now.processes.end()) continue;
            diag::carry_quiet_times(before->second, p);
            p.findings = diag::diagnose(p, {opts.min_age});
            p.changes = diag::changes_between(before->second, p);
        }
        if (!cfg.json) print_round_header(next.processes, now.processes, cfg.all);
        print_round(cfg, next, &now);
        now = std::move(next);
        if (now.processes.empty() && !cfg.all) {
            fmt::print("no process left to watch\n");
            return exit_ok;
        }
    }
    return any_findings(now) ? exit_findings : exit_ok;
}

}  // namespace

void add_doctor_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<doctor_config>();
    auto* sub = app.add_subcommand(
        "doctor",
        "Find the connections a process fails to end, and say why: CLOSE_WAIT leaks, unread\n"
        "bytes that make close() reset, send queues a peer does not take, sockets left to the\n"
        "kernel, full accept queues, descriptors near the limit. Any program, any language:\n"
        "reads the kernel's socket tables (netlink sock_diag) and /proc/PID/fd, like ss -p.");
    sub->add_option("pid", cfg->pids, "The processes to examine, e.g. orderly doctor 1234 5678")
        ->type_name("PID")
        ->check(check_pid);
    auto* all = sub->add_flag("--all", cfg->all,
                              "Examine every process (those of other users need root), e.g. "
                              "orderly doctor --all");
    all->excludes(sub->get_option("pid"));
    sub->add_option(
           "--watch", cfg->watch,
           "Look again every SECONDS and show what changed (new CLOSE_WAITs, growing\n"
           "  queues) until SIGINT, e.g. --watch 2 (500ms and 1m work too; 100ms at least)")
        ->type_name("SECONDS")
        ->check(check_watch_interval);
    sub->add_option("--count", cfg->count,
                    "With --watch: stop after this many looks (the first included), e.g. "
                    "--count 10")
        ->type_name("N")
        ->check(check_count);
    sub->add_option("--min-age", cfg->min_age,
                    "Leave out sockets on which nothing has moved for less than this long\n"
                    "  (default 1s: a busy server passes through CLOSE_WAIT for microseconds);\n"
                    "  0 shows everything, e.g. --min-age 30s")
        ->type_name("DURATION")
        ->check(check_duration);
    sub->add_flag("--json", cfg->json,
                  "One JSON object per process and look on stdout (fields: docs/doctor.md),\n"
                  "  e.g. orderly doctor --json 1234");
    sub->add_flag("-v,--verbose", cfg->verbose,
                  "List every socket, and with --all every process, e.g. orderly doctor -v 1234");
    sub->footer(std::string("Examples:\n"
                            "  orderly doctor $(pidof myserver)\n"
                            "  orderly doctor --watch 2 --min-age 10s 1234\n"
                            "  sudo orderly doctor --all --json\n\n") +
                exit_codes_help);
    sub->callback([cfg, &run] {
        if (cfg->pids.empty() && !cfg->all) {
            throw CLI::ValidationError("doctor", "name the processes to examine (PID...) or --all");
        }
        if (cfg->count != 0 && cfg->watch.empty()) {
            throw CLI::ValidationError("--count", "needs --watch");
        }
        run = [cfg] { return run_doctor(*cfg); };
    });
}

}  // namespace orderly::cli
