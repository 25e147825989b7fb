#include "lab_doctor.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>

#include "orderly/diag/snapshot.hpp"

namespace orderly::cli {

doctor_check doctor_close_wait_check(const std::vector<int>& fds) {
    doctor_check out;
    const int pid = static_cast<int>(::getpid());
    auto snap = diag::snapshot(pid, {std::chrono::milliseconds(0)});
    if (!snap) {
        out.lines.push_back("orderly doctor could not examine this process: " +
                            snap.error().message());
        return out;
    }
    for (const auto& f : snap->findings) {
        if (f.kind != diag::finding_kind::close_wait) continue;
        std::string listed;
        for (const int fd : f.fds) {
            listed += fmt::format("{}{}", listed.empty() ? "" : ", ", fd);
            out.named += std::count(fds.begin(), fds.end(), fd) > 0 ? 1 : 0;
        }
        out.lines.push_back(
            fmt::format("orderly doctor {} (this process): close_wait: {}", pid, f.summary));
        out.lines.push_back(fmt::format("  fds {}; what to change: {}", listed, f.advice));
        return out;
    }
    out.lines.push_back(
        fmt::format("orderly doctor {} (this process): no close_wait finding", pid));
    return out;
}

}  // namespace orderly::cli
