// Event layer stress: 200 connections on one loop; each client sends, and each on_data closes,
// aborts, pauses or writes to other connections of the same batch. Every on_closed must run
// exactly once and no descriptor may be left; run under ASan (build/review-asan).
#include <dirent.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

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
    constexpr int n = 200;
    const int before = fds();
    std::vector<int> closed(n, 0);
    std::vector<rv::pair_fds> pairs(n);
    for (auto& p : pairs)
        p = rv::make_pair();
    {
        orderly::loop lp(rv::backend_opts(argc, argv));
        std::vector<orderly::connection_ptr> cs(n);
        auto cb = std::make_shared<orderly::connection_callbacks>();
        cb->on_data = [&](orderly::connection& c, std::span<const std::byte> d) {
            const int i = static_cast<int>(reinterpret_cast<std::uintptr_t>(c.context().get()));
            switch (i % 5) {
                case 0:
                    cs[(i + 1) % n]->close();
                    break;
                case 1:
                    cs[(i + 2) % n]->abort();
                    break;
                case 2:
                    cs[(i + 3) % n]->pause_reading();
                    (void)cs[(i + 3) % n]->write(d);
                    break;
                case 3:
                    cs[(i + 1) % n]->close_gracefully(50ms);
                    c.close();
                    break;
                default:
                    (void)c.write(d);
                    c.shutdown_write();
                    break;
            }
        };
        cb->on_closed = [&](orderly::connection& c, const orderly::close_report&) {
            const int i = static_cast<int>(reinterpret_cast<std::uintptr_t>(c.context().get()));
            ++closed[i];
        };
        for (int i = 0; i < n; ++i) {
            cs[i] = orderly::connection::adopt(lp, std::move(pairs[i].server), cb).value();
            cs[i]->set_context(
                std::shared_ptr<void>(reinterpret_cast<void*>(std::uintptr_t(i)), [](void*) {}));
        }
        for (int i = 0; i < n; ++i)
            ::send(pairs[i].client.get(), "hello", 5, MSG_NOSIGNAL);
        for (int i = 0; i < n; i += 7)
            ::shutdown(pairs[i].client.get(), SHUT_WR);
        lp.run_after(300ms, [&] { lp.stop(); });
        lp.run();
        for (auto& c : cs)
            c.reset();
    }
    for (auto& p : pairs)
        p.client.reset();
    int bad = 0;
    for (int i = 0; i < n; ++i)
        bad += closed[i] != 1;
    std::printf("%s: connections with on_closed != 1: %d; descriptors %d -> %d\n",
                argc > 1 ? argv[1] : "epoll", bad, before, fds());
}
