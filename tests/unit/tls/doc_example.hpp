// The example of docs/tls.md, verbatim between the markers (doc_example_test checks both).
#pragma once
#include <string>

// --- docs/tls.md example begin ---
#include <cstdio>
#include <orderly/orderly.hpp>
#include <orderly/tls/tls_stream.hpp>

// Sends a request over TLS, half-closes, reads the whole reply, ends in order.
// Returns the reply, or an empty string after printing why it failed.
inline std::string tls_request(const orderly::endpoint& server, const std::string& name,
                               const std::string& ca_file, const std::string& request) {
    using namespace std::chrono_literals;
    orderly::tls_client_config cfg;
    cfg.ca_file = ca_file;  // empty: the system store
    auto ctx = orderly::tls_context::client(cfg);
    if (!ctx) return std::fprintf(stderr, "%s\n", ctx.error().message().c_str()), "";
    auto sock = orderly::stream_socket::connect(server, 5s);
    if (!sock) return std::fprintf(stderr, "connect: %s\n", sock.error().message().c_str()), "";
    auto tls = orderly::tls_stream::client(std::move(*sock), *ctx, name);
    if (!tls) return "";
    const auto until = orderly::deadline::after(10s);
    if (auto hs = tls->handshake(until); !hs) {
        std::fprintf(stderr, "%s\n", hs.error().message().c_str());  // "certificate verify..."
        return "";
    }
    std::string reply;
    if (!tls->send_all(request, until) || !tls->shutdown(orderly::shut::write)) return "";
    auto got = tls->read_to_end(reply, until);  // ends at the server's close_notify
    const orderly::close_report end = tls->close_gracefully();
    std::printf("%s\n", end.to_string().c_str());
    if (!got) {
        // errc::tls_truncated: TCP ended without close_notify; `reply` may be cut short.
        std::fprintf(stderr, "reply: %s\n", got.error().message().c_str());
        return "";
    }
    return end.orderly() ? reply : "";
}
// --- docs/tls.md example end ---
