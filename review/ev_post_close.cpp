// Event layer: close() posted from another thread while the peer sends, 500 times per backend;
// on_closed exactly once each, no descriptor left (run under ASan).
#include <dirent.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <thread>

#include "common.hpp"
static int fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    while (readdir(d))
        ++n;
    closedir(d);
    return n - 3;
}
int main(int argc, char** argv) {
    orderly::loop lp(rv::backend_opts(argc, argv));
    std::thread t([&] { lp.run(); });
    std::atomic<int> closed{0};
    const int before = fds();
    auto cb = std::make_shared<orderly::connection_callbacks>();
    cb->on_data = [](orderly::connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    cb->on_closed = [&](orderly::connection&, const orderly::close_report&) { ++closed; };
    constexpr int n = 500;
    for (int i = 0; i < n; ++i) {
        auto p = rv::make_pair();
        std::atomic<bool> adopted{false};
        orderly::connection_ptr c;
        lp.post([&] {
            c = orderly::connection::adopt(lp, std::move(p.server), cb).value();
            adopted = true;
        });
        while (!adopted)
            std::this_thread::yield();
        ::send(p.client.get(), "ping", 4, MSG_NOSIGNAL);
        lp.post([c, i] {
            if (i % 2)
                c->close();
            else
                c->close_gracefully(std::chrono::milliseconds(20));
        });
        c.reset();
    }
    for (int k = 0; k < 200 && closed.load() < n; ++k)
        usleep(10000);
    lp.stop();
    t.join();
    std::printf("%s: on_closed %d of %d; descriptors %d -> %d\n", argc > 1 ? argv[1] : "epoll",
                closed.load(), n, before, fds());
}
