// The server-side --tls-* options shared by listen and serve (see tls_options.hpp).

#include "tls_options.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace orderly::cli {

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const auto end = comma == std::string::npos ? text.size() : comma;
        if (end > start) out.push_back(text.substr(start, end - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

void add_tls_server_options(CLI::App& sub, tls_server_flags& flags) {
    sub.add_option("--tls-cert", flags.cert,
                   "Speak TLS with this certificate chain (PEM, leaf first); needs --tls-key,\n"
                   "  e.g. --tls-cert certs/cert.pem (orderly cert makes a pair)")
        ->type_name("FILE");
    sub.add_option("--tls-key", flags.key,
                   "The certificate's private key (PEM), e.g. --tls-key certs/key.pem")
        ->type_name("FILE");
    sub.add_option("--tls-alpn", flags.alpn,
                   "Accept these ALPN protocols (comma-separated, preferred first),\n"
                   "  e.g. --tls-alpn http/1.1")
        ->type_name("LIST");
}

tls_server_setup make_tls_server_context(const tls_server_flags& flags) {
    tls_server_setup out;
    if (!flags.given()) {
        if (!flags.alpn.empty()) {
            print_error("--tls-alpn needs --tls-cert and --tls-key (TLS is off without them)");
            out.code = exit_usage;
        }
        return out;
    }
    if (flags.cert.empty() || flags.key.empty()) {
        print_error("--tls-cert and --tls-key go together: give both (orderly cert makes a pair)");
        out.code = exit_usage;
        return out;
    }
    tls_server_config tc;
    tc.cert_file = flags.cert;
    tc.key_file = flags.key;
    tc.alpn = split_list(flags.alpn);
    auto ctx = tls_context::server(tc);
    if (!ctx) {
        print_error(fmt::format("--tls-cert {} --tls-key {}: {}", flags.cert, flags.key,
                                ctx.error().message()));
        const exit_code code = exit_code_for(ctx.error().code);  // tls_config_error: usage
        out.code = code == exit_ok ? exit_failure : code;
        return out;
    }
    out.ctx = std::move(*ctx);
    return out;
}

}  // namespace orderly::cli
