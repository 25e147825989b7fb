// Built against an installed orderly: parses an endpoint and makes one orderly exchange.
#include <cstdio>
#include <orderly/orderly.hpp>

int main() {
    auto l = orderly::listen("127.0.0.1:0");
    if (!l) return 1;
    auto c = orderly::stream_socket::connect(l->local_endpoint());
    auto s = l->accept(orderly::deadline::after(std::chrono::seconds(5)));
    if (!c || !s) return 1;
    if (!c->shutdown(orderly::shut::write)) return 1;
    const auto server_end = s->close_gracefully();
    const auto client_end = c->close_gracefully();
    std::printf("%s\n%s\n", server_end.to_string().c_str(), client_end.to_string().c_str());
    return server_end.orderly() && client_end.orderly() ? 0 : 1;
}
