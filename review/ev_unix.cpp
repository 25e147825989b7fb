// Event layer over a Unix socketpair, both backends: the peer sends 100 KB and half-closes, we
// echo in on_data and close_gracefully at its EOF; then the peer reads it all. And: our side
// half-closes first, the peer sends, then closes. Reports and what the peer saw.
#include <sys/socket.h>

#include <memory>
#include <thread>

#include "common.hpp"
using namespace std::chrono_literals;
int main(int argc, char** argv) {
    for (int mode = 0; mode < 2; ++mode) {
        orderly::loop lp(rv::backend_opts(argc, argv));
        int sv[2];
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        orderly::unique_fd ours(sv[0]), peer(sv[1]);
        orderly::close_report rep;
        auto cb = std::make_shared<orderly::connection_callbacks>();
        cb->on_data = [](orderly::connection& c, std::span<const std::byte> d) {
            (void)c.write(d);
        };
        cb->on_peer_eof = [](orderly::connection& c) { c.close_gracefully(2s); };
        cb->on_closed = [&](orderly::connection&, const orderly::close_report& r) {
            rep = r;
            lp.stop();
        };
        auto c = orderly::connection::adopt(lp, std::move(ours), cb).value();
        std::string peer_view;
        std::thread t([&] {
            if (mode == 1) usleep(50000);
            rv::send_n(peer.get(), 100000);
            ::shutdown(peer.get(), SHUT_WR);
            peer_view = rv::client_sees(peer.get());
        });
        if (mode == 1) c->shutdown_write();
        lp.run_after(5s, [&] { lp.stop(); });
        lp.run();
        t.join();
        std::printf("%s mode %d: %s\n    peer: %s\n",
                    std::string(orderly::to_string(lp.backend())).c_str(), mode,
                    rep.to_string().c_str(), peer_view.c_str());
    }
}
