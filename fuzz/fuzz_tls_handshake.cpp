// fuzz_tls_handshake: arbitrary bytes as a client's first flight to a tls_stream server (OpenSSL
// over the stream's memory BIOs), then the client's FIN. Properties: the handshake fails (random
// bytes cannot finish one) with errc::tls_handshake_failed and a reason, never hangs past the EOF
// (no timeout), and the close report says tls_error without crashing or leaking.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/tls/self_signed.hpp"
#include "orderly/tls/tls_stream.hpp"

namespace {

const orderly::tls_context& server_context() {
    static const orderly::tls_context ctx = [] {
        auto pem = orderly::make_self_signed().value();
        orderly::tls_server_config cfg;
        cfg.cert_pem = pem.cert;
        cfg.key_pem = pem.key;
        cfg.alpn = {"h2", "http/1.1"};
        return orderly::tls_context::server(cfg).value();
    }();
    return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace std::chrono_literals;
    if (size > 65536) return 0;  // beyond a socket pair's buffer the writer would need a thread
    auto pair = orderly::stream_socket::pair();
    FUZZ_CHECK(pair.has_value());
    auto& [client, server] = *pair;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto sent = client.send_all(bytes, orderly::deadline::after(1s));
    FUZZ_CHECK(sent.has_value() && sent.bytes == size);
    FUZZ_CHECK(client.shutdown(orderly::shut::write).has_value());

    auto tls = orderly::tls_stream::server(std::move(server), server_context());
    FUZZ_CHECK(tls.has_value());
    auto hs = tls->handshake(orderly::deadline::after(5s));
    FUZZ_CHECK(!hs.has_value());
    FUZZ_CHECK(hs.error().code == orderly::errc::tls_handshake_failed);
    FUZZ_CHECK(!hs.error().detail.empty());
    char buf[16];
    FUZZ_CHECK(!tls->recv(std::span(buf), orderly::deadline::after(1s)).has_value());
    const auto end = tls->close_gracefully();
    FUZZ_CHECK(end.outcome == orderly::close_outcome::tls_error ||
               end.outcome == orderly::close_outcome::peer_reset);
    FUZZ_CHECK(end.tls.has_value());
    (void)client.close();
    return 0;
}
