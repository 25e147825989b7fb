// Blocking Happy Eyeballs over an endpoint list on loopback: a black hole (a listener whose
// backlog is full), a refusal, and a live listener, in several orders; checks the winner, the
// time, and that no descriptor is left behind (and that the live server saw one connection).
#include <dirent.h>
#include <poll.h>

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
int main() {
    orderly::listen_options lo;
    lo.backlog = 0;
    auto hole = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0), lo).value();
    std::vector<orderly::unique_fd> fill;
    for (int i = 0; i < 3; ++i) {
        orderly::unique_fd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        ::connect(f.get(), hole.local_endpoint().data(), hole.local_endpoint().size());
        fill.push_back(std::move(f));
    }
    auto live = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0)).value();
    auto closed_l = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0)).value();
    const auto refused = closed_l.local_endpoint();
    (void)closed_l.close();
    usleep(100000);
    const auto H = hole.local_endpoint(), L = live.local_endpoint(), R = refused;
    const std::vector<std::vector<orderly::endpoint>> lists = {{H, L}, {R, L}, {H, R, L}, {H, H, L},
                                                               {L, H}, {H, R}, {H}};
    for (const auto& list : lists) {
        const int before = fds();
        orderly::connect_options o;
        o.timeout = 800ms;
        const auto t0 = orderly::clock::now();
        auto s = orderly::connect(list, o);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(orderly::clock::now() - t0)
                .count();
        std::string names;
        for (auto& e : list)
            names += (e == H ? "hole " : e == R ? "refused " : "live ");
        int accepted = 0;
        for (;;) {
            pollfd p{live.native_handle(), POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) break;
            auto a = live.accept(orderly::deadline::after(100ms));
            if (!a) break;
            ++accepted;
        }
        std::printf("[%s] after %lld ms: %s; live accepted %d; fds %d -> %d\n", names.c_str(),
                    (long long)ms, s ? "connected" : s.error().message().c_str(), accepted, before,
                    fds() - (s ? 1 : 0));
    }
}
