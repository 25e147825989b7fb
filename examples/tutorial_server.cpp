// A server both tutorial clients can talk to: it echoes what it receives, in upper case, until
// the client's EOF, then ends the connection in order. Usage: tutorial_server [HOST:PORT] [COUNT]
// (default 127.0.0.1:0; COUNT connections, default unlimited). Prints "listening on ..." first.

#include <cctype>
#include <cstdio>
#include <string>

#include "orderly/orderly.hpp"

int main(int argc, char** argv) {
    const char* where = argc > 1 ? argv[1] : "127.0.0.1:0";
    const long count = argc > 2 ? std::stol(argv[2]) : -1;
    auto l = orderly::listen(where);
    if (!l) {
        std::fprintf(stderr, "tutorial_server: %s\n", l.error().message().c_str());
        return 1;
    }
    std::fprintf(stderr, "listening on %s\n", l->local_endpoint().to_string().c_str());
    for (long served = 0; count < 0 || served < count; ++served) {
        auto conn = l->accept();
        if (!conn) {
            std::fprintf(stderr, "accept: %s\n", conn.error().message().c_str());
            continue;
        }
        char buf[4096];
        for (;;) {
            auto n = conn->recv(std::span<char>(buf),
                                orderly::deadline::after(std::chrono::seconds(10)));
            if (!n || *n == 0) break;  // error, or the client's EOF: our direction is still open
            std::string reply(buf, *n);
            for (char& c : reply)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (!conn->send_all(reply)) break;
        }
        const orderly::close_report r = conn->close_gracefully();
        std::fprintf(stderr, "connection ended: %s\n", r.to_string().c_str());
    }
}
