// Command line of orderly_load.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace load {

// How the echo client (W1, W2, W5, W6) drives its sockets.
enum class client_kind : std::uint8_t {
    epoll,  // epoll_wait, then one recv and one send syscall per message
    uring,  // sends and multishot recvs as SQEs, one io_uring_submit_and_wait per iteration
};

struct options {
    std::string target;
    sockaddr_in addr{};
    std::string workload;
    client_kind client = client_kind::epoll;
    std::size_t connections = 0;  // 0: the workload's default
    std::size_t size = 0;         // 0: the workload's default
    double seconds = -1;          // < 0: the workload's default
    double warmup = 0.5;
    double hang_after = 10;  // stop: how long after SIGTERM a connection may stay open
    pid_t server_pid = 0;
    std::uint64_t count = 0;   // churn: total connections (0 = bounded by time only)
    std::size_t sources = 16;  // churn: source addresses 127.0.0.1..N, see run_churn
    bool tls = false;          // --tls: latency, pingpong, bulk and churn over TLS (tls_client.hpp)
};

// Parses argv; prints the usage and exits with status 2 on bad arguments.
[[nodiscard]] options parse(int argc, char** argv);

[[nodiscard]] const char* to_string(client_kind k);

}  // namespace load
