// A server reads only the first 1 KiB of a 256 KiB request, replies with 1 MiB and closes.
// With plain close() the unread request bytes make Linux answer with RST and the client loses the
// tail of the reply. With close_gracefully() the client gets every byte. Runs both on loopback.

#include <cstdio>
#include <string>
#include <thread>

#include "orderly/orderly.hpp"

namespace {

using namespace std::chrono_literals;
constexpr std::size_t reply_size = 1 << 20;

void run(bool orderly_close) {
    auto l = orderly::listen("127.0.0.1:0");
    if (!l) throw std::system_error(l.error().code, l.error().message());
    orderly::close_report server_report;
    std::thread server([&] {
        auto s = l->accept(orderly::deadline::after(5s)).value();
        char head[1024];
        (void)s.recv(std::span<char>(head));  // read the start of the request, ignore the rest
        (void)s.send_all(std::string(reply_size, 'r'), orderly::deadline::after(10s));
        server_report = orderly_close ? s.close_gracefully() : s.close();
    });
    auto c = orderly::stream_socket::connect(l->local_endpoint()).value();
    (void)c.send_all(std::string(256 * 1024, 'q'), orderly::deadline::after(10s));
    (void)c.shutdown(orderly::shut::write);
    std::string reply;
    const auto got = c.read_to_end(reply, orderly::deadline::after(10s));
    server.join();
    std::printf("%-17s client got %7zu of %zu reply bytes%s%s\n",
                orderly_close ? "close_gracefully:" : "plain close():", got.bytes, reply_size,
                got ? "" : " - then ", got ? "" : got.error().message().c_str());
    std::printf("%17s server report: %s\n", "", server_report.to_string().c_str());
}

}  // namespace

int main() {
    run(false);
    run(true);
}
