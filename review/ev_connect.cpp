// Event layer connect (Happy Eyeballs on a loop), both backends:
//  1. "localhost:PORT" with the server on 127.0.0.1 only: [::1] refused, IPv4 wins.
//  2. a black hole (a listener whose backlog is full drops SYNs): the deadline ends the race.
//  3. the loop destroyed while a connect is pending: no descriptor left, handler once or never?
#include <dirent.h>

#include <memory>
#include <orderly/event/connector.hpp>

#include "common.hpp"
using namespace std::chrono_literals;
static int fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    while (readdir(d))
        ++n;
    closedir(d);
    return n - 3;
}
int main(int argc, char** argv) {
    auto opts = rv::backend_opts(argc, argv);
    const std::string b = argc > 1 ? argv[1] : "epoll";
    auto cbs = std::make_shared<orderly::connection_callbacks>();
    {
        auto l = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0)).value();
        orderly::loop lp(opts);
        const std::string where = "localhost:" + std::to_string(l.local_endpoint().port());
        orderly::connect(lp, where, cbs, [&](auto c, const orderly::connect_report& r) {
            std::printf("%s 1: %s; %s\n", b.c_str(), c ? "connected" : c.error().message().c_str(),
                        r.to_string().c_str());
            if (c) (*c)->close();
            lp.stop();
        });
        lp.run();
    }
    // A black hole on loopback: backlog 0, one connection already queued, nobody accepts.
    auto hole = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0), {.backlog = 0});
    if (!hole) {
        std::printf("listen: %s\n", hole.error().message().c_str());
        return 1;
    }
    const auto hep = hole->local_endpoint();
    std::vector<orderly::unique_fd> fill;
    for (int i = 0; i < 3; ++i) {
        orderly::unique_fd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        ::connect(f.get(), hep.data(), hep.size());
        fill.push_back(std::move(f));
    }
    usleep(100000);
    const int before = fds();
    {
        orderly::loop lp(opts);
        const auto t0 = orderly::clock::now();
        orderly::connect_options co;
        co.timeout = 600ms;
        orderly::connect(
            lp, hep.to_string(), cbs,
            [&](auto c, const orderly::connect_report& r) {
                std::printf("%s 2: after %lld ms: %s; %s\n", b.c_str(),
                            (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                                orderly::clock::now() - t0)
                                .count(),
                            c ? "connected?!" : c.error().message().c_str(), r.to_string().c_str());
                if (c) (*c)->close();
                lp.stop();
            },
            co);
        lp.run();
    }
    std::printf("%s 2: descriptors before %d, after %d\n", b.c_str(), before, fds());
    int called = 0;
    {
        orderly::loop lp(opts);
        orderly::connect(lp, hep.to_string(), cbs,
                         [&](auto, const orderly::connect_report&) { ++called; });
        lp.run_after(50ms, [&] { lp.stop(); });
        lp.run();
    }
    std::printf(
        "%s 3: loop destroyed mid-connect: handler ran %d times; descriptors before %d, "
        "after %d\n",
        b.c_str(), called, before, fds());
}
