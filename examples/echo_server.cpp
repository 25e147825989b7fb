// echo_server: sends every byte back. When a client half-closes (sends FIN), the server finishes
// echoing and then sends its own FIN — it never drops a half-closed client. SIGINT/SIGTERM stop it
// gracefully: every connection gets what it is owed, then FIN, then a summary is printed.
//
//   echo_server [127.0.0.1:0]        then e.g.:  printf 'hi' | nc -N 127.0.0.1 <port>

#include <csignal>
#include <cstdio>

#include "orderly/event/server.hpp"

using namespace orderly;

int main(int argc, char** argv) {
    auto at = endpoint::parse(argc > 1 ? argv[1] : "127.0.0.1:0");
    if (!at) {
        std::fprintf(stderr, "%s\n", at.error().message().c_str());
        return 2;
    }

    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte> data) { (void)c.write(data); };
    cb.on_peer_eof = [](connection& c) { c.shutdown_write(); };  // FIN after the last echo
    cb.on_closed = [](connection&, const close_report& r) {
        std::printf("%s\n", r.to_string().c_str());
    };

    // Block the stop signals before the loop threads start, so that they inherit the mask and
    // the signals wait for sigwait() below instead of killing the process.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    server_options opts;
    opts.log = [](std::string_view line) {
        std::fprintf(stderr, "%.*s\n", int(line.size()), line.data());
    };
    auto srv = server::start(*at, cb, opts);
    if (!srv) {
        std::fprintf(stderr, "%s\n", srv.error().message().c_str());
        return 1;
    }
    std::printf("listening on %s\n", (*srv)->local_endpoint().to_string().c_str());
    std::fflush(stdout);

    int signo = 0;
    sigwait(&stop_signals, &signo);
    const stop_summary s = (*srv)->stop_gracefully(deadline::after(std::chrono::seconds(5)));
    std::printf("%s\n", s.to_string().c_str());
    return 0;
}
