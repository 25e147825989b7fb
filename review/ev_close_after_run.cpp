// Event layer: close() called after loop::run() has returned (allowed: "on any one thread once
// loop::run() has returned"). close() is "release now": does the peer see our FIN before the
// loop is destroyed, on both backends? And is on_closed called exactly once?
#include <poll.h>

#include <memory>

#include "common.hpp"
int main(int argc, char** argv) {
    int closed = 0;
    orderly::close_report rep;
    rv::pair_fds p = rv::make_pair();
    {
        orderly::loop lp(rv::backend_opts(argc, argv));
        auto cbs = std::make_shared<orderly::connection_callbacks>();
        cbs->on_closed = [&](orderly::connection&, const orderly::close_report& r) {
            rep = r;
            ++closed;
        };
        auto c = orderly::connection::adopt(lp, std::move(p.server), cbs).value();
        lp.post([&] { lp.stop(); });
        lp.run();
        c->close();
        pollfd pf{p.client.get(), POLLIN, 0};
        int ready = ::poll(&pf, 1, 500);
        std::printf(
            "%s: after close(), before ~loop: peer readable within 500 ms: %s; "
            "on_closed so far %d; is_open %d\n",
            std::string(orderly::to_string(lp.backend())).c_str(), ready > 0 ? "yes" : "NO", closed,
            c->is_open());
    }
    std::printf("after ~loop: on_closed %d; %s; client sees %s\n", closed, rep.to_string().c_str(),
                rv::client_sees(p.client.get()).c_str());
    return 0;
}
