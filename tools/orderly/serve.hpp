#pragma once
// orderly serve: what its options say (filled in serve_command.cpp) and the server that runs it
// (serve.cpp).

#include <cstdint>
#include <string>

#include "cli.hpp"
#include "tls_options.hpp"

namespace orderly::cli {

struct serve_config {
    std::string mode;
    std::string where;
    std::string bytes = "0";
    std::string read_limit;
    std::string close_mode = "orderly";
    std::string close_timeout = "5s";
    std::string drain_limit = "1M";
    std::string idle_timeout;
    std::string lifetime_timeout;
    std::string backend;  // empty: not given, ORDERLY_BACKEND decides
    std::uint64_t max_connections = 0;
    unsigned threads = 0;
    bool dual_stack = false;
    report_options report;
    tls_server_flags tls;
};

// Listens, serves until SIGINT/SIGTERM (or --max-connections), stops gracefully, prints the
// summary; returns the exit code.
int run_serve(const serve_config& cfg);

}  // namespace orderly::cli
