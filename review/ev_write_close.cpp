// Event layer: on the peer's request the application writes a reply and calls close() at once
// (the reply fits the socket buffer). On epoll the kernel has the reply when write() returns:
// it is delivered and bytes_sent counts it. On io_uring the send is an SQE not yet submitted.
// What do the report and the peer see on each backend?
#include <memory>

#include "common.hpp"
int main(int argc, char** argv) {
    orderly::loop lp(rv::backend_opts(argc, argv));
    auto p = rv::make_pair();
    rv::send_n(p.client.get(), 10);
    ::shutdown(p.client.get(), SHUT_WR);
    orderly::close_report rep;
    int closed = 0;
    bool w_ok = false;
    auto cbs = std::make_shared<orderly::connection_callbacks>();
    cbs->on_peer_eof = [&](orderly::connection& c) {
        w_ok = c.write(std::string(1000, 'r')).has_value();
        c.shutdown_write();
        c.close();
    };
    cbs->on_closed = [&](orderly::connection&, const orderly::close_report& r) {
        rep = r;
        ++closed;
        lp.stop();
    };
    auto c = orderly::connection::adopt(lp, std::move(p.server), cbs).value();
    lp.run();
    std::printf("%s: write ok %d; %s\n", std::string(orderly::to_string(lp.backend())).c_str(),
                w_ok, rep.to_string().c_str());
    std::printf("on_closed %d; client sees: %s\n", closed, rv::client_sees(p.client.get()).c_str());
    return 0;
}
