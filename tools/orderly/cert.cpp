// orderly cert --out DIR: a self-signed certificate and key for tests and demos (make_self_signed).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "orderly/tls/self_signed.hpp"

namespace orderly::cli {
namespace {

struct cert_config {
    std::string out;
    std::vector<std::string> names;
};

int run_cert(const cert_config& cfg) {
    // The directory: made when missing (with its parents), else it must be a directory.
    std::error_code ec;
    if (!std::filesystem::exists(cfg.out, ec)) {
        if (!std::filesystem::create_directories(cfg.out, ec) || ec) {
            print_error(
                fmt::format("--out {}: cannot create the directory: {} (create it, or "
                            "choose a directory you can write)",
                            cfg.out, ec ? ec.message() : "unknown error"));
            return exit_failure;
        }
    } else if (!std::filesystem::is_directory(cfg.out, ec)) {
        print_error(
            fmt::format("--out {}: not a directory (give a directory; cert.pem and "
                        "key.pem are written into it)",
                        cfg.out));
        return exit_usage;
    }
    self_signed_options opts;
    if (!cfg.names.empty()) opts.names = cfg.names;
    auto pem = make_self_signed(opts);
    if (!pem) {
        print_error(pem.error().message());
        return exit_code_for(pem.error().code) == exit_usage ? exit_usage : exit_failure;
    }
    const std::string cert_path = cfg.out + "/cert.pem";
    const std::string key_path = cfg.out + "/key.pem";
    for (const auto& [path, text] : {std::pair{cert_path, pem->cert}, {key_path, pem->key}}) {
        if (auto w = write_pem_file(path, text); !w) {
            print_error(fmt::format("{} (is --out {} writable?)", w.error().message(), cfg.out));
            return exit_failure;
        }
    }
    std::string names;
    for (const auto& n : opts.names)
        names += (names.empty() ? "" : ", ") + n;
    fmt::print(stderr, "wrote {} and {} (self-signed, for: {}; valid 30 days; for tests only)\n",
               cert_path, key_path, names);
    return exit_ok;
}

}  // namespace

void add_cert_command(CLI::App& app, runner& run) {
    auto cfg = std::make_shared<cert_config>();
    auto* sub = app.add_subcommand(
        "cert",
        "Write a self-signed certificate (cert.pem) and its key (key.pem, mode 0600) into DIR,\n"
        "for tests and demos with --tls-cert/--tls-key and --tls-ca. Nothing vouches for it.");
    sub->add_option("--out", cfg->out,
                    "The directory to write into (made when missing), e.g. --out build/certs")
        ->type_name("DIR")
        ->required();
    sub->add_option("--name", cfg->names,
                    "A name the certificate is for: host names become DNS names, IP addresses\n"
                    "  IP addresses (repeatable; default localhost, 127.0.0.1 and ::1),\n"
                    "  e.g. --name example.test --name 10.0.0.1")
        ->type_name("NAME");
    sub->footer(std::string("Examples:\n"
                            "  orderly cert --out /tmp/certs\n"
                            "  orderly listen --tls-cert /tmp/certs/cert.pem --tls-key "
                            "/tmp/certs/key.pem 127.0.0.1:8443\n"
                            "  orderly connect --tls --tls-ca /tmp/certs/cert.pem "
                            "localhost:8443\n\n") +
                exit_codes_help);
    sub->callback([cfg, &run] { run = [cfg] { return run_cert(*cfg); }; });
}

}  // namespace orderly::cli
