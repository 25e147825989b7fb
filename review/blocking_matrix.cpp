// Blocking layer: each way of ending, over TCP and over a Unix socket pair, with what the peer
// saw. Prints one line per case: the report and the peer's view, for a human to judge.
#include <sys/socket.h>

#include <functional>
#include <thread>

#include "common.hpp"
using namespace std::chrono_literals;
using orderly::stream_socket;

static std::pair<stream_socket, stream_socket> make(bool unix_socket) {
    if (unix_socket) return stream_socket::pair().value();
    auto l = orderly::listener::listen(orderly::endpoint::ipv4_loopback(0)).value();
    auto c = stream_socket::connect(l.local_endpoint(), 5s).value();
    auto s = l.accept(orderly::deadline::after(5s)).value();
    return {std::move(s), std::move(c)};
}
static void reset(stream_socket& s) {
    linger lg{1, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    (void)s.close();
}
static std::string sees(stream_socket& peer) {
    std::string out;
    auto r = peer.read_to_end(out, orderly::deadline::after(2s));
    return std::to_string(out.size()) + " B then " + (r.ok() ? "eof" : r.error.message());
}
int main() {
    struct kase {
        const char* name;
        std::function<std::string(stream_socket&, stream_socket&)> run;
    };
    const kase cases[] = {
        {"peer reset, then our shutdown+close",
         [](stream_socket& a, stream_socket& b) {
             reset(b);
             std::this_thread::sleep_for(20ms);
             auto sh = a.shutdown(orderly::shut::write);
             return std::string("shutdown: ") + (sh ? "ok" : sh.error().message()) + "; " +
                    a.close().to_string();
         }},
        {"our shutdown, then peer reset, close_gracefully",
         [](stream_socket& a, stream_socket& b) {
             (void)a.shutdown(orderly::shut::write);
             reset(b);
             return a.close_gracefully({.timeout = 1s}).to_string();
         }},
        {"close with unread data",
         [](stream_socket& a, stream_socket& b) {
             (void)b.send_all("unread");
             std::this_thread::sleep_for(20ms);
             auto r = a.close().to_string();
             return r + " | peer: " + sees(b);
         }},
        {"peer half-closes, we answer 1 MB, close_gracefully",
         [](stream_socket& a, stream_socket& b) {
             (void)b.shutdown(orderly::shut::write);
             std::string big(1 << 20, 'b');
             std::string peer_view;
             std::thread t([&] { peer_view = sees(b); });
             (void)a.send_all(big);
             auto r = a.close_gracefully({.timeout = 3s}).to_string();
             t.join();
             return r + " | peer: " + peer_view;
         }},
        {"we half-close, peer sends 1 MB then FIN, read_to_end, close",
         [](stream_socket& a, stream_socket& b) {
             (void)a.shutdown(orderly::shut::write);
             std::thread t([&] {
                 (void)b.send_all(std::string(1 << 20, 'p'));
                 (void)b.shutdown(orderly::shut::write);
             });
             std::string got;
             (void)a.read_to_end(got, orderly::deadline::after(3s));
             t.join();
             std::this_thread::sleep_for(20ms);
             return "read " + std::to_string(got.size()) + " B; " + a.close().to_string();
         }},
        {"shut both, peer then writes, close",
         [](stream_socket& a, stream_socket& b) {
             (void)a.shutdown(orderly::shut::both);
             auto w = b.send_all("late");
             std::this_thread::sleep_for(20ms);
             return std::string("peer write: ") + (w.ok() ? "ok" : w.error.message()) + "; " +
                    a.close().to_string();
         }},
        {"shut both, peer FINs, close_gracefully",
         [](stream_socket& a, stream_socket& b) {
             (void)a.shutdown(orderly::shut::both);
             std::this_thread::sleep_for(20ms);
             return a.close_gracefully({.timeout = 300ms}).to_string() +
                    " (peer never FINs: expect timed_out)";
         }},
        {"abort",
         [](stream_socket& a, stream_socket& b) {
             auto r = a.abort().to_string();
             return r + " | peer: " + sees(b);
         }},
    };
    for (bool unix_socket : {false, true}) {
        for (const auto& k : cases) {
            auto [a, b] = make(unix_socket);
            std::printf("%s | %s:\n    %s\n", unix_socket ? "unix" : "tcp ", k.name,
                        k.run(a, b).c_str());
        }
    }
}
