// Event layer: a loop destroyed with connections in every phase (idle, 4 MB send pending to a
// peer that does not read, reading paused with data waiting, in close_gracefully's drain, in the
// ack wait): on_closed once each, no descriptor left, and what each peer sees.
#include <dirent.h>

#include <memory>

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
    std::vector<rv::pair_fds> pairs(5);
    for (auto& p : pairs)
        p = rv::make_pair();
    const int before = fds();
    int closed = 0;
    std::vector<std::string> reports(5);
    {
        orderly::loop lp(opts);
        std::vector<orderly::connection_ptr> cs;
        for (int i = 0; i < 5; ++i) {
            auto cb = std::make_shared<orderly::connection_callbacks>();
            cb->on_closed = [&, i](orderly::connection&, const orderly::close_report& r) {
                ++closed;
                reports[i] += r.to_string() + " ";
            };
            cs.push_back(orderly::connection::adopt(lp, std::move(pairs[i].server), cb).value());
        }
        (void)cs[1]->write(std::string(4 << 20, 'w'));
        cs[2]->pause_reading();
        rv::send_n(pairs[2].client.get(), 1000);
        cs[3]->close_gracefully(10s);
        ::shutdown(pairs[4].client.get(), SHUT_WR);
        lp.run_after(30ms, [&] {
            (void)cs[4]->write(std::string(4 << 20, 'a'));
            cs[4]->shutdown_write();
        });
        lp.run_after(100ms, [&] { lp.stop(); });
        lp.run();
        std::printf("%s: before ~loop: on_closed %d\n",
                    std::string(orderly::to_string(lp.backend())).c_str(), closed);
    }
    std::printf("after ~loop: on_closed %d (want 5); descriptors %d -> %d (want %d)\n", closed,
                before, fds(), before - 5);
    const char* what[] = {"idle", "4 MB pending", "paused with data", "draining", "ack wait"};
    for (int i = 0; i < 5; ++i) {
        std::printf("  %s: %s\n    peer: ", what[i], reports[i].c_str());
        std::printf("%s\n", rv::client_sees(pairs[i].client.get()).c_str());
    }
}
