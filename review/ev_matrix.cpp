// Event layer, one backend per run (argv[1]): ways of ending, each on a fresh loop and pair,
// with the report, the number of on_closed calls and what the peer saw, for a human to judge.
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <thread>

#include "common.hpp"
using namespace std::chrono_literals;
using orderly::connection;
using orderly::connection_callbacks;

struct ctx {
    orderly::loop* lp;
    orderly::connection_ptr c;
    int peer;  // raw blocking client
};
static void peer_reset(int fd) {
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}
int main(int argc, char** argv) {
    auto opts = rv::backend_opts(argc, argv);
    struct kase {
        const char* name;
        std::function<void(ctx&)> start;  // on the loop, after adopt
        std::function<void(connection_callbacks&)> cbs;
    };
    const std::string mb(1 << 20, 'm');
    const kase cases[] = {
        {"peer half-closes; we write 1 MB and close_gracefully",
         [&](ctx& x) {
             ::shutdown(x.peer, SHUT_WR);
             x.lp->run_after(20ms, [&x, &mb] {
                 (void)x.c->write(mb);
                 x.c->close_gracefully(3s);
             });
         },
         nullptr},
        {"peer half-closes and never reads; we write 4 MB, shutdown_write, close() at 100 ms",
         [&](ctx& x) {
             ::shutdown(x.peer, SHUT_WR);
             x.lp->run_after(20ms, [&x] {
                 (void)x.c->write(std::string(4 << 20, 'u'));
                 x.c->shutdown_write();
             });
             x.lp->run_after(100ms, [&x] { x.c->close(); });
         },
         nullptr},
        {"peer stops reading; we write 4 MB + shutdown_write; the peer then resets",
         [&](ctx& x) {
             (void)x.c->write(std::string(4 << 20, 'r'));
             x.c->shutdown_write();
             x.lp->run_after(100ms, [&x] {
                 peer_reset(x.peer);
                 ::close(x.peer);
                 x.peer = -1;
             });
         },
         nullptr},
        {"reading paused; peer sends 10 KB + FIN; close_gracefully drains",
         [&](ctx& x) {
             x.c->pause_reading();
             std::string d(10000, 'd');
             rv::send_n(x.peer, d.size());
             ::shutdown(x.peer, SHUT_WR);
             x.lp->run_after(50ms, [&x] { x.c->close_gracefully(2s); });
         },
         nullptr},
        {"abort with 4 MB buffered",
         [&](ctx& x) {
             (void)x.c->write(std::string(4 << 20, 'a'));
             x.lp->run_after(20ms, [&x] { x.c->abort(); });
         },
         nullptr},
        {"close_gracefully; the peer sends 10 KB then resets during the drain",
         [&](ctx& x) {
             x.c->close_gracefully(2s);
             x.lp->run_after(50ms, [&x] {
                 rv::send_n(x.peer, 10000);
                 peer_reset(x.peer);
                 ::close(x.peer);
                 x.peer = -1;
             });
         },
         nullptr},
        {"on_data closes and writes after close (write must fail, on_closed once)",
         [&](ctx& x) { rv::send_n(x.peer, 10); },
         [](connection_callbacks& cb) {
             cb.on_data = [](connection& c, std::span<const std::byte>) {
                 c.close();
                 auto w = c.write("after");
                 std::printf("    write after close: %s\n",
                             w ? "ok?!" : w.error().message().c_str());
                 c.close();
                 c.abort();
                 c.close_gracefully(1s);
             };
         }},
    };
    for (const auto& k : cases) {
        orderly::loop lp(opts);
        auto p = rv::make_pair();
        int closed = 0;
        orderly::close_report rep;
        auto cb = std::make_shared<connection_callbacks>();
        if (k.cbs) k.cbs(*cb);
        cb->on_closed = [&](connection&, const orderly::close_report& r) {
            rep = r;
            ++closed;
            lp.run_after(50ms, [&lp] { lp.stop(); });
        };
        ctx x{&lp, nullptr, p.client.get()};
        x.c = connection::adopt(lp, std::move(p.server), cb).value();
        k.start(x);
        lp.run_after(4s, [&lp] { lp.stop(); });
        std::string peer_view = "(reset by us)";
        std::thread reader;
        if (x.peer >= 0 && std::string(k.name).find("never reads") == std::string::npos &&
            std::string(k.name).find("stops reading") == std::string::npos) {
            reader = std::thread([&] { peer_view = rv::client_sees(p.client.get()); });
        }
        lp.run();
        if (reader.joinable()) reader.join();
        if (x.peer < 0) p.client.release();
        std::printf("%s | %s\n    on_closed %d: %s\n    peer: %s\n",
                    std::string(orderly::to_string(lp.backend())).c_str(), k.name, closed,
                    rep.to_string().c_str(), peer_view.c_str());
    }
}
