// Event layer: the peer sends 200 KB; the application closes in its first on_data. Epoll leaves
// the rest in the socket: unread_data_discarded and RST. Does io_uring's multishot read-ahead
// (bytes already in provided buffers, CQEs not yet handled) say the same, or `closed`?
#include <memory>

#include "common.hpp"
int main(int argc, char** argv) {
    orderly::loop lp(rv::backend_opts(argc, argv));
    auto p = rv::make_pair();
    rv::send_n(p.client.get(), 200000);
    usleep(50000);
    orderly::close_report rep;
    int closed = 0;
    auto cbs = std::make_shared<orderly::connection_callbacks>();
    std::size_t first = 0;
    cbs->on_data = [&](orderly::connection& c, std::span<const std::byte> d) {
        if (!first) first = d.size();
        c.close();
    };
    cbs->on_closed = [&](orderly::connection&, const orderly::close_report& r) {
        rep = r;
        ++closed;
        lp.stop();
    };
    auto c = orderly::connection::adopt(lp, std::move(p.server), cbs).value();
    lp.run();
    std::printf("%s: first on_data %zu B; %s\n",
                std::string(orderly::to_string(lp.backend())).c_str(), first,
                rep.to_string().c_str());
    std::printf("on_closed %d; client sees: %s\n", closed, rv::client_sees(p.client.get()).c_str());
    return 0;
}
