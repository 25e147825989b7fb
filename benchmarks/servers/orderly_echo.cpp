// bench_orderly: the echo peer on orderly's own server, written the way a user would.
//
// Memory: reads land in the loop's shared 64 KiB buffer and go straight back out through write();
// a connection buffers only what the kernel refuses. high_water = 0 makes it pause reading as soon
// as anything is owed, the same rule every other peer follows. Level-triggered epoll
// (docs/event.md).
//
// --tls-cert CERT.pem --tls-key KEY.pem: the same echo over TLS 1.3 (bench_orderly as the
// orderly_tls peer). server_options::filter puts a tls_filter (OpenSSL over memory BIOs) under
// every accepted connection; on_data gets plaintext, on_peer_eof is the client's close_notify and
// shutdown_write() answers it with ours and then FIN.

#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "orderly/event/server.hpp"
#include "orderly/tls/tls_context.hpp"
#include "orderly/tls/tls_filter.hpp"

using namespace orderly;

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", port = "0", cert, key;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        if (std::strcmp(argv[i], "--port") == 0) port = argv[i + 1];
        if (std::strcmp(argv[i], "--tls-cert") == 0) cert = argv[i + 1];
        if (std::strcmp(argv[i], "--tls-key") == 0) key = argv[i + 1];
    }
    if (cert.empty() != key.empty()) {
        std::fprintf(stderr, "--tls-cert and --tls-key go together: give both or neither\n");
        return 2;
    }
    auto at = endpoint::parse(host + ":" + port);
    if (!at) {
        std::fprintf(stderr, "%s\n", at.error().message().c_str());
        return 2;
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }

    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte> data) { (void)c.write(data); };
    cb.on_peer_eof = [](connection& c) { c.shutdown_write(); };  // FIN after the last echo

    // Blocked before the loop thread starts, so it inherits the mask and sigwait() gets them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    server_options opts;
    opts.threads = 1;
    opts.connection.high_water = 0;
    opts.connection.low_water = 0;
    // The contract drains each peer to its EOF for the whole 5 s, however much it sends; the
    // default 1 MiB cap would abort a peer that keeps sending.
    opts.stop_drain_limit = UINT64_MAX;
    if (!cert.empty()) {
        tls_server_config tc;
        tc.cert_file = cert;
        tc.key_file = key;
        tc.min_version = tls_version::tls1_3;  // the same for every TLS peer
        auto ctx = tls_context::server(tc);
        if (!ctx) {
            std::fprintf(stderr, "%s\n", ctx.error().message().c_str());
            return 2;
        }
        opts.filter = tls_filter::server_factory(std::move(*ctx));
    }
    auto srv = server::start(*at, cb, opts);
    if (!srv) {
        std::fprintf(stderr, "%s\n", srv.error().message().c_str());
        return 1;
    }
    std::printf("listening on %s\n", (*srv)->local_endpoint().to_string().c_str());
    std::fflush(stdout);

    int signo = 0;
    sigwait(&stop_signals, &signo);
    // Echo what was read, FIN, drain each peer to its EOF; abort what is left after 5 s.
    const stop_summary s = (*srv)->stop_gracefully(deadline::after(std::chrono::seconds(5)));
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 0;
}
