// The half-close client: send a request, say "done sending" with shutdown(write), and keep reading
// the reply until the server's EOF. Usage: half_close_client HOST:PORT [MESSAGE]

#include <cstdio>
#include <string>

#include "orderly/orderly.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: half_close_client HOST:PORT [MESSAGE]\n");
        return 2;
    }
    const std::string message = argc > 2 ? argv[2] : "Hello, server";
    auto sock = orderly::connect(argv[1], std::chrono::seconds(5));
    if (!sock) {
        std::fprintf(stderr, "half_close_client: %s\n", sock.error().message().c_str());
        return 1;
    }
    const auto until = orderly::deadline::after(std::chrono::seconds(10));
    if (auto sent = sock->send_all(message, until); !sent) {
        std::fprintf(stderr, "send: %s after %zu bytes\n", sent.error().message().c_str(),
                     sent.bytes);
        return 1;
    }
    // FIN: the server now knows the request is complete. Reading still works.
    sock->shutdown(orderly::shut::write).value();

    std::string reply;
    if (auto got = sock->read_to_end(reply, until); !got) {
        std::fprintf(stderr, "read: %s\n", got.error().message().c_str());
    }
    std::printf("received: %s\n", reply.c_str());
    // Both directions are finished, so a plain close is already the orderly end.
    std::printf("%s\n", sock->close().to_string().c_str());
}
