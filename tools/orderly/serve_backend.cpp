// orderly serve --backend: which way the event loops wait for the kernel (see serve_backend.hpp).

#include "serve_backend.hpp"

#include <fmt/core.h>

#include <cstdlib>

namespace orderly::cli {

backend_choice choose_backend(const std::string& flag) {
    std::string want = flag;
    const char* env = std::getenv("ORDERLY_BACKEND");
    const std::string source = flag.empty() ? "ORDERLY_BACKEND=io_uring" : "--backend io_uring";
    if (want.empty()) want = env == nullptr ? "automatic" : env;
    if (want == "uring") want = "io_uring";
    // The library reads ORDERLY_BACKEND for `automatic`; with the choice made here it must not
    // (the flag wins), and without it automatic_backend() is the probe's answer. No thread runs
    // yet.
    (void)::unsetenv("ORDERLY_BACKEND");
    backend_choice out;
    if (want == "epoll") {
        out.backend = loop_backend::epoll;
        return out;
    }
    const loop_backend probed = automatic_backend();
    if (want != "io_uring") {  // automatic (an unknown ORDERLY_BACKEND value counts as that)
        out.backend = probed;
        out.fell_back = probed == loop_backend::epoll;
        return out;
    }
    out.backend = loop_backend::io_uring;
    if (probed != loop_backend::io_uring) {
        std::string why = automatic_backend_reason();  // "epoll: io_uring is not usable here: ..."
        if (why.starts_with("epoll: ")) why.erase(0, 7);
        out.error = fmt::format(
            "{}: {}. Use --backend epoll (or automatic, which falls back to epoll), or allow "
            "io_uring: sysctl kernel.io_uring_disabled=0, and no seccomp filter (container "
            "runtime) that blocks io_uring_setup",
            source, why);
    }
    return out;
}

}  // namespace orderly::cli
