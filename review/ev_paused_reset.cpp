// Event layer: reading paused by the application, then shutdown_write() (our FIN goes), then the
// peer resets. epoll reports EPOLLERR whatever is watched: the connection ends peer_reset at once.
// On io_uring nothing is armed once our FIN is out and reading is paused: is the reset seen?
#include <sys/socket.h>

#include <memory>

#include "common.hpp"
using namespace std::chrono_literals;
int main(int argc, char** argv) {
    orderly::loop lp(rv::backend_opts(argc, argv));
    auto p = rv::make_pair();
    orderly::close_report rep;
    int closed = 0;
    auto cbs = std::make_shared<orderly::connection_callbacks>();
    cbs->on_closed = [&](orderly::connection&, const orderly::close_report& r) {
        rep = r;
        ++closed;
    };
    auto c = orderly::connection::adopt(lp, std::move(p.server), cbs).value();
    c->pause_reading();
    c->shutdown_write();
    lp.run_after(100ms, [&] {
        linger lg{1, 0};
        ::setsockopt(p.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        p.client.reset();
    });
    lp.run_after(1100ms, [&] { lp.stop(); });
    lp.run();
    std::printf("%s: 1 s after the peer's RST: on_closed %d, is_open %d; %s\n",
                std::string(orderly::to_string(lp.backend())).c_str(), closed, c->is_open(),
                closed ? rep.to_string().c_str() : "(no report)");
    c->abort();
    return 0;
}
