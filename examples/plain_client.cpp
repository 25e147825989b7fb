// The plain client: send, receive one reply, close. Fine when the protocol says how long the reply
// is; the half-close client shows the way when it does not. Usage: plain_client HOST:PORT [MESSAGE]

#include <cstdio>
#include <string>

#include "orderly/orderly.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: plain_client HOST:PORT [MESSAGE]\n");
        return 2;
    }
    const std::string message = argc > 2 ? argv[2] : "Hello, world";
    auto sock = orderly::connect(argv[1], std::chrono::seconds(5));
    if (!sock) {
        std::fprintf(stderr, "plain_client: %s\n", sock.error().message().c_str());
        return 1;
    }
    const auto until = orderly::deadline::after(std::chrono::seconds(10));
    if (!sock->send_all(message, until)) return 1;
    char buf[1024];
    auto n = sock->recv(std::span<char>(buf), until);
    if (!n) {
        std::fprintf(stderr, "recv: %s\n", n.error().message().c_str());
        return 1;
    }
    std::printf("received: %.*s\n", static_cast<int>(*n), buf);
    // We stop early: close_gracefully says FIN and waits for the server's, so nothing is reset.
    std::printf("%s\n", sock->close_gracefully().to_string().c_str());
}
