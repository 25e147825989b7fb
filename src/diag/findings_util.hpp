#pragma once
// What the finding functions share (internal to src/diag): durations and counts as text, where a
// socket is, and the collector that gathers the sockets of one finding.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orderly/diag/findings.hpp"
#include "orderly/diag/process_snapshot.hpp"

namespace orderly::diag::detail {

using std::chrono::milliseconds;

inline constexpr std::size_t evidence_lines = 10;

// "850 ms", "12.3 s", "754 s": integer arithmetic, so no locale can change the decimal point.
inline std::string duration_text(milliseconds d) {
    const auto ms = d.count();
    if (ms < 1000) return std::to_string(ms) + " ms";
    if (ms >= 100'000) return std::to_string(ms / 1000) + " s";
    const auto tenths = (ms + 50) / 100;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

inline std::string count_text(std::size_t n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// "fd 5 127.0.0.1:8000 -> 127.0.0.1:45678" (no fd for a socket left to the kernel).
inline std::string where(const socket_info& s) {
    std::string out = s.fd >= 0 ? "fd " + std::to_string(s.fd) + " " : "";
    out += s.kernel.local.to_string();
    out += " -> ";
    if (s.kernel.unix_peer_gone) {
        out += "(peer gone)";
    } else if (s.kernel.peer.family() == address_family::none) {
        out += "*";
    } else {
        out += s.kernel.peer.to_string();
    }
    return out;
}

// Collects the sockets of one finding.
class collector {
  public:
    explicit collector(finding_kind k) { f_.kind = k; }

    void add(const socket_info& s, std::string line, std::optional<milliseconds> quiet) {
        add(s.fd, s.kernel.inode, std::move(line), quiet);
    }
    void add(int fd, std::uint64_t inode, std::string line, std::optional<milliseconds> quiet) {
        ++f_.count;
        if (fd >= 0) f_.fds.push_back(fd);
        f_.inodes.push_back(inode);
        if (quiet && (!f_.quiet_for || *quiet < *f_.quiet_for)) f_.quiet_for = quiet;
        if (f_.evidence.size() < evidence_lines) f_.evidence.push_back(std::move(line));
    }
    [[nodiscard]] bool empty() const noexcept { return f_.count == 0; }
    [[nodiscard]] std::size_t count() const noexcept { return f_.count; }

    // Moves the finding into `out` with its text, if it has any socket.
    void finish(std::vector<finding>& out, std::string summary, std::string advice) {
        if (f_.count == 0) return;
        if (f_.count > f_.evidence.size()) {
            f_.evidence.push_back("... and " + std::to_string(f_.count - f_.evidence.size()) +
                                  " more");
        }
        std::sort(f_.fds.begin(), f_.fds.end());
        f_.summary = std::move(summary);
        f_.advice = std::move(advice);
        out.push_back(std::move(f_));
    }

  private:
    finding f_;
};

// The finding functions of findings_idle.cpp, called by diagnose() in its order.
void find_closed_not_released(const process_snapshot& p, std::vector<finding>& out);
void find_stuck_sends(const process_snapshot& p, milliseconds min_age, std::vector<finding>& out);

}  // namespace orderly::diag::detail
