// orderly lab [SCENARIO...]: runs the experiments of lab_scenarios.cpp, merges their timelines with
// the captured segments, prints them (text or JSON lines) and writes ladder diagrams.

#include "lab.hpp"

#include <fmt/core.h>
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "capture.hpp"
#include "cli.hpp"
#include "lab_segments.hpp"
#include "svg.hpp"

namespace orderly::cli {

namespace {

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string state_from_proc(const char* path, std::uint16_t local_port, std::uint16_t remote_port) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        if (!(fields >> slot >> local >> remote >> state)) continue;
        auto port_of = [](const std::string& addr) -> unsigned long {
            const auto colon = addr.rfind(':');
            return colon == std::string::npos ? 0 : std::stoul(addr.substr(colon + 1), nullptr, 16);
        };
        if (port_of(local) == local_port && port_of(remote) == remote_port) {
            const auto st = std::stoul(state, nullptr, 16);
            return lab_state_word(std::string(to_string(static_cast<tcp_state>(st))));
        }
    }
    return {};
}

}  // namespace

std::string proc_tcp_state(std::uint16_t local_port, std::uint16_t remote_port) {
    auto s = state_from_proc("/proc/net/tcp", local_port, remote_port);
    if (s.empty()) s = state_from_proc("/proc/net/tcp6", local_port, remote_port);
    return s.empty() ? "CLOSED" : s;
}

lab_recorder::lab_recorder() : start_(clock::now()), realtime_start_ns_(realtime_ns()) {}

double lab_recorder::now_ms() const {
    return std::chrono::duration<double, std::milli>(clock::now() - start_).count();
}

std::size_t lab_recorder::add_connection(const lab_connection& c) {
    std::lock_guard lock(mu_);
    conns_.push_back(c);
    return conns_.size() - 1;
}

void lab_recorder::set_client_fd(std::size_t conn, int fd) {
    std::lock_guard lock(mu_);
    conns_.at(conn).client_fd = fd;
}

void lab_recorder::set_server_fd(std::size_t conn, int fd) {
    std::lock_guard lock(mu_);
    conns_.at(conn).server_fd = fd;
}

std::string lab_recorder::state_of(int fd, std::uint16_t local_port,
                                   std::uint16_t remote_port) const {
    if (fd >= 0) {
        if (auto info = read_tcp_info(fd))
            return lab_state_word(std::string(to_string(info->state)));
    }
    // Closed descriptors: the kernel may still hold the connection (FIN_WAIT2, TIME_WAIT,
    // LAST_ACK), which only the connection table shows.
    return proc_tcp_state(local_port, remote_port);
}

void lab_recorder::call(double t_ms, std::string side, std::size_t conn, std::string call_text,
                        std::string result_text, std::int64_t bytes, double t_end_ms) {
    // Recorded right after the call returned, unless the caller says when that was.
    const double returned = t_end_ms >= 0 ? t_end_ms : now_ms();
    std::lock_guard lock(mu_);
    lab_event e;
    e.what = lab_event::kind::call;
    e.t_ms = t_ms;
    e.t_end_ms = returned;
    e.side = std::move(side);
    e.call = std::move(call_text);
    e.result = std::move(result_text);
    e.bytes = bytes;
    if (conn < conns_.size()) {
        const auto& c = conns_[conn];
        e.client_state = state_of(c.client_fd, c.client_port, c.server_port);
        e.server_state = state_of(c.server_fd, c.server_port, c.client_port);
    }
    events_.push_back(std::move(e));
}

void lab_recorder::note(std::string text) {
    const double t = now_ms();
    std::lock_guard lock(mu_);
    lab_event e;
    e.what = lab_event::kind::note;
    e.t_ms = t;
    e.side = "note";
    e.result = std::move(text);
    events_.push_back(std::move(e));
}

void lab_recorder::add_segment(lab_event e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
}

void lab_recorder::tls_record(lab_tls_record r) {
    std::lock_guard lock(mu_);
    records_.push_back(std::move(r));
}

std::vector<lab_tls_record> lab_recorder::tls_records() const {
    std::lock_guard lock(mu_);
    return records_;
}

std::vector<lab_event> lab_recorder::events() const {
    std::lock_guard lock(mu_);
    return events_;
}

std::vector<lab_connection> lab_recorder::connections() const {
    std::lock_guard lock(mu_);
    return conns_;
}

namespace {

std::string json_escape(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
                } else {
                    out += ch;
                }
        }
    }
    return out;
}

std::string_view kind_name(lab_event::kind k) {
    switch (k) {
        case lab_event::kind::call:
            return "call";
        case lab_event::kind::segment:
            return "segment";
        case lab_event::kind::note:
            return "note";
    }
    return "?";
}

// Side label of a captured segment's sender: "client" / "server", numbered when a scenario has
// several connections.
std::string segment_side(const captured_segment& s, const std::vector<lab_connection>& conns,
                         bool& to_server, std::string& peer) {
    for (std::size_t i = 0; i < conns.size(); ++i) {
        const auto& c = conns[i];
        const std::string suffix = conns.size() > 1 ? fmt::format("#{}", i + 1) : "";
        if (s.src_port == c.client_port && s.dst_port == c.server_port) {
            to_server = true;
            peer = "server" + suffix;
            return "client" + suffix;
        }
        if (s.src_port == c.server_port && s.dst_port == c.client_port) {
            to_server = false;
            peer = "client" + suffix;
            return "server" + suffix;
        }
    }
    // A connection the scenario did not register (for example one the kernel refused).
    to_server = s.dst_port < s.src_port;
    peer = "?";
    return "?";
}

struct lab_config {
    std::vector<std::string> names;
    bool list = false;
    std::string svg_dir;
    bool json = false;
    bool no_capture = false;
};

void print_text(const lab_scenario& sc, const std::vector<lab_event>& events,
                const lab_outcome& outcome, const std::string& capture_note) {
    fmt::print("== {}: {} ==\n", sc.name, sc.title);
    fmt::print("{:>9}  {:<9} {:<36} {:<52} {:<12} {:<12} {}\n", "t ms", "side", "call", "result",
               "client", "server", "bytes");
    for (const auto& row : timeline_rows(events)) {
        const auto& e = events[row.index];
        switch (e.what) {
            case lab_event::kind::call:
                // A call that spans other rows: "..." at its start, its result where it returned.
                if (row.spans) {
                    fmt::print("{:>9.3f}  {:<9} {:<36} ...\n", e.t_ms, e.side, e.call);
                    break;
                }
                fmt::print("{:>9.3f}  {:<9} {:<36} {:<52} {:<12} {:<12} {}\n",
                           row.is_return ? e.t_end_ms : e.t_ms, e.side,
                           row.is_return ? "<- " + e.call : e.call, e.result, e.client_state,
                           e.server_state, e.bytes >= 0 ? std::to_string(e.bytes) : "");
                break;
            case lab_event::kind::segment:
                fmt::print("{:>9.3f}  {:<9} {:<36} {:<52}\n", e.t_ms, "segment", e.call, e.result);
                break;
            case lab_event::kind::note:
                fmt::print("{:>9.3f}  {:<9} {}\n", e.t_ms, "note", e.result);
                break;
        }
    }
    fmt::print("segments: {}\n", capture_note);
    fmt::print("=> {}{}\n\n", outcome.verdict,
               outcome.showed_lesson ? "" : " [the expected effect did not show this time]");
    (void)std::fflush(stdout);
}

void print_json(const lab_scenario& sc, const std::vector<lab_event>& events,
                const lab_outcome& outcome, const std::string& capture_note, bool captured) {
    for (const auto& e : events) {
        fmt::print(
            "{{\"scenario\":\"{}\",\"kind\":\"{}\",\"t_ms\":{:.3f},\"side\":\"{}\",\"call\":\"{}\","
            "\"result\":\"{}\",\"client_state\":\"{}\",\"server_state\":\"{}\",\"bytes\":{},"
            "\"flags\":\"{}\",\"length\":{},\"count\":{},\"to_server\":{},"
            "\"retransmitted\":{},\"retransmission\":{},\"acks\":{},\"t_end_ms\":{:.3f}}}\n",
            sc.name, kind_name(e.what), e.t_ms, json_escape(e.side), json_escape(e.call),
            json_escape(e.result), e.client_state, e.server_state, e.bytes, e.flags, e.length,
            e.count, e.to_server, e.retransmitted, e.retransmission, e.acks,
            e.t_end_ms >= 0 ? e.t_end_ms : e.t_ms);
    }
    fmt::print(
        "{{\"scenario\":\"{}\",\"kind\":\"verdict\",\"showed_lesson\":{},\"verdict\":\"{}\","
        "\"captured\":{},\"capture_note\":\"{}\"}}\n",
        sc.name, outcome.showed_lesson, json_escape(outcome.verdict), captured,
        json_escape(capture_note));
    (void)std::fflush(stdout);
}

int run_lab(const lab_config& cfg) {
    ignore_sigpipe();
    const auto& all = lab_scenarios();
    if (cfg.list) {
        for (const auto& sc : all)
            fmt::print("{:<24} {}\n", sc.name, sc.title);
        return exit_ok;
    }
    std::vector<const lab_scenario*> chosen;
    for (const auto& sc : all) {
        if (cfg.names.empty() ||
            std::find(cfg.names.begin(), cfg.names.end(), sc.name) != cfg.names.end()) {
            chosen.push_back(&sc);
        }
    }
    if (!cfg.svg_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(cfg.svg_dir, ec);
        if (ec) {
            print_error(
                fmt::format("cannot create --svg directory '{}': {}", cfg.svg_dir, ec.message()));
            return exit_failure;
        }
    }

    // One capture socket for the whole run: the kernel timestamps packets only once a socket has
    // asked for timestamps for a moment, so a socket opened per scenario would miss the SYNs'.
    packet_capture cap;
    std::string capture_off;
    if (cfg.no_capture) {
        capture_off = "not shown: capture switched off with --no-capture";
    } else if (!cap.open(capture_off)) {
        capture_off = "not shown: " + capture_off;
    } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

    int code = exit_ok;
    for (const lab_scenario* sc : chosen) {
        lab_recorder rec;
        auto l = listener::listen(endpoint::ipv4_loopback(0));
        if (!l) {
            print_error(fmt::format("{}: {}", sc->name, l.error().message()));
            return exit_failure;
        }
        const std::uint16_t port = l->local_endpoint().port();

        std::string capture_note = capture_off;
        cap.follow_port(port);  // and drop whatever arrived between scenarios

        lab_outcome outcome;
        try {
            outcome = sc->run(rec, *l);
        } catch (const std::exception& e) {
            outcome.showed_lesson = false;
            outcome.verdict = fmt::format("the experiment failed: {}", e.what());
        }
        l->close();

        auto events = rec.events();
        if (cap.is_open()) {
            // The last ACKs leave a moment after the last call returns.
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            const auto conns = rec.connections();
            const auto segs = cap.take(port);
            const auto records = rec.tls_records();
            for (const auto& s : segs) {
                lab_event e;
                e.what = lab_event::kind::segment;
                e.t_ms = static_cast<double>(s.realtime_ns - rec.realtime_start_ns()) / 1e6;
                std::string peer;
                e.side = segment_side(s, conns, e.to_server, peer);
                e.call = e.side + " -> " + peer;
                e.flags = flags_to_string(s.flags);
                e.length = s.payload;
                e.seq = s.seq;
                e.record = tls_records_in(s, segs, conns, records);
                events.push_back(std::move(e));
            }
            capture_note = fmt::format("captured on lo with AF_PACKET ({} segments on port {})",
                                       segs.size(), port);
        }
        std::stable_sort(events.begin(), events.end(),
                         [](const lab_event& a, const lab_event& b) { return a.t_ms < b.t_ms; });
        mark_retransmissions(events);
        for (auto& e : events) {
            if (e.what == lab_event::kind::segment) e.result = segment_label(e);
        }
        events = merge_runs(std::move(events));

        if (cfg.json) {
            print_json(*sc, events, outcome, capture_note, cap.is_open());
        } else {
            print_text(*sc, events, outcome, capture_note);
        }

        if (!cfg.svg_dir.empty()) {
            ladder lad{sc->name, sc->title, outcome.verdict, cap.is_open() ? "" : capture_note,
                       events};
            const auto path = std::filesystem::path(cfg.svg_dir) / (std::string(sc->name) + ".svg");
            std::ofstream out(path);
            out << render_ladder_svg(lad);
            if (!out) {
                print_error(fmt::format("cannot write {}", path.string()));
                code = exit_failure;
            } else if (!cfg.json) {
                fmt::print("wrote {}\n\n", path.string());
            }
        }
        if (!outcome.showed_lesson && code == exit_ok) code = exit_failure;
    }
    return code;
}

}  // namespace

void add_lab_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<lab_config>();
    std::vector<std::string> names;
    std::string scenario_help = "Scenarios to run (default: all), in this order:\n";
    for (const auto& sc : lab_scenarios()) {
        names.emplace_back(sc.name);
        scenario_help += fmt::format("  {:<24} {}\n", sc.name, sc.title);
    }
    scenario_help += "  e.g. orderly lab naive-close-loses-data orderly-close";
    auto* sub = app.add_subcommand(
        "lab",
        "Run live experiments on 127.0.0.1 that show how TCP connections end. Each prints a\n"
        "timeline: time, side, call, result, TCP state of both sockets (TCP_INFO), bytes; as\n"
        "root the real segments captured on lo (SYN, FIN, RST, ACK, data length) are shown too.");
    sub->add_option("scenario", cfg->names, scenario_help)
        ->check(CLI::Validator(
            [names](const std::string& word) -> std::string {
                if (std::find(names.begin(), names.end(), word) != names.end()) return {};
                return "unknown scenario '" + word + "' (orderly lab --list shows them: " +
                       fmt::format("{}", fmt::join(names, ", ")) + ")";
            },
            "SCENARIO"));
    sub->add_flag("--list", cfg->list, "List the scenarios and exit, e.g. orderly lab --list");
    sub->add_option("--svg", cfg->svg_dir,
                    "Write one ladder diagram per scenario to DIR/<scenario>.svg (a browser opens\n"
                    "  them), e.g. --svg build/lab")
        ->type_name("DIR");
    sub->add_flag("--json", cfg->json,
                  "Print the timelines as JSON lines (one event per line, then a verdict line),\n"
                  "  e.g. orderly lab --json time-wait");
    sub->add_flag("--no-capture", cfg->no_capture,
                  "Do not capture segments even when allowed (timeline from TCP_INFO only),\n"
                  "  e.g. sudo orderly lab --no-capture");
    sub->footer(
        "Examples:\n"
        "  orderly lab --list\n"
        "  sudo orderly lab naive-close-loses-data\n"
        "  orderly lab --svg build/lab\n\n"
        "Exit codes: 0 every scenario showed its effect; 1 one did not (or could not run);\n"
        "2 usage error (an unknown scenario name).\n");
    sub->callback([cfg, &run] { run = [cfg] { return run_lab(*cfg); }; });
}

}  // namespace orderly::cli
