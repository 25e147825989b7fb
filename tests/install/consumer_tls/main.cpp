// Built against an installed orderly::tls: a self-signed certificate, then one TLS exchange over
// loopback that ends in order on both sides.
#include <cstdio>
#include <orderly/orderly.hpp>
#include <orderly/tls/self_signed.hpp>
#include <orderly/tls/tls_stream.hpp>
#include <thread>

int main() {
    using namespace std::chrono_literals;
    auto pem = orderly::make_self_signed();
    if (!pem) return std::fprintf(stderr, "%s\n", pem.error().message().c_str()), 1;
    orderly::tls_server_config s;
    s.cert_pem = pem->cert;
    s.key_pem = pem->key;
    auto sctx = orderly::tls_context::server(s);
    orderly::tls_client_config c;
    c.insecure_skip_verify = true;  // the consumer only checks that it links and works
    auto cctx = orderly::tls_context::client(c);
    auto l = orderly::listen("127.0.0.1:0");
    if (!sctx || !cctx || !l) return 1;
    bool server_clean = false;
    std::thread server([&] {
        auto sock = l->accept(orderly::deadline::after(5s));
        if (!sock) return;
        auto t = orderly::tls_stream::server(std::move(*sock), *sctx);
        if (!t || !t->handshake(orderly::deadline::after(5s))) return;
        std::string req;
        (void)t->read_to_end(req, orderly::deadline::after(5s));
        (void)t->send_all("ok:" + req, orderly::deadline::after(5s));
        server_clean = t->close_gracefully().orderly();
    });
    auto sock = orderly::stream_socket::connect(l->local_endpoint());
    if (!sock) return server.join(), 1;
    auto t = orderly::tls_stream::client(std::move(*sock), *cctx, "localhost");
    std::string reply;
    bool ok = t && t->handshake(orderly::deadline::after(5s)) && t->send_all("hi") &&
              t->shutdown(orderly::shut::write) &&
              t->read_to_end(reply, orderly::deadline::after(5s));
    const auto end = t ? t->close_gracefully() : orderly::close_report{};
    server.join();
    std::printf("%s\n", end.to_string().c_str());
    return ok && reply == "ok:hi" && end.orderly() && server_clean ? 0 : 1;
}
