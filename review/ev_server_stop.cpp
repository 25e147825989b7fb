// server::stop_gracefully with clients waiting in the accept backlog: the only loop is blocked in
// the first connection's on_open while N clients connect, send a request and half-close (mode
// "fin"), or reset (mode "rst"), or just wait (mode "wait"). Then stop_gracefully(2 s).
// What do the summary and each client see?
#include <sys/socket.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common.hpp"
using namespace std::chrono_literals;
int main(int argc, char** argv) {
    std::string mode = argc > 2 ? argv[2] : "fin";
    orderly::server_options so;
    so.threads = 1;
    so.loop = rv::backend_opts(argc, argv);
    std::atomic<int> opened{0};
    std::atomic<int> closed{0};
    orderly::connection_callbacks cb;
    cb.on_open = [&](orderly::connection&) {
        if (opened++ == 0) std::this_thread::sleep_for(400ms);
    };
    cb.on_data = [](orderly::connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    cb.on_peer_eof = [](orderly::connection& c) { c.shutdown_write(); };
    cb.on_closed = [&](orderly::connection&, const orderly::close_report& r) {
        closed++;
        std::printf("  server report: %s\n", r.to_string().c_str());
    };
    auto srv = orderly::server::start(orderly::endpoint::ipv4_loopback(0), cb, so);
    if (!srv) return 2;
    auto ep = (*srv)->local_endpoint();
    auto dial = [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::connect(fd, ep.data(), ep.size());
        return fd;
    };
    int first = dial();  // blocks the loop in on_open
    std::this_thread::sleep_for(50ms);
    std::vector<int> fds;
    for (int i = 0; i < 5; ++i) {
        int fd = dial();
        ::send(fd, "hello", 5, MSG_NOSIGNAL);
        if (mode == "fin") ::shutdown(fd, SHUT_WR);
        if (mode == "rst") {
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(fd);
            fd = -1;
        }
        fds.push_back(fd);
    }
    auto sum = (*srv)->stop_gracefully(orderly::deadline::after(2s));
    std::printf("%s/%s: %s\n", argc > 1 ? argv[1] : "epoll", mode.c_str(), sum.to_string().c_str());
    std::printf("opened %d, on_closed %d\n", opened.load(), closed.load());
    for (int fd : fds) {
        if (fd < 0) continue;
        std::printf("  backlog client sees: %s\n", rv::client_sees(fd).c_str());
        ::close(fd);
    }
    std::printf("  first client sees: %s\n", rv::client_sees(first).c_str());
    ::close(first);
}
