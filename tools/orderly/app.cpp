// The `orderly` command line: the top-level app and its subcommands (each in its own file).

#include "app.hpp"

#include <CLI/CLI.hpp>
#include <string>

namespace orderly::cli {

std::unique_ptr<CLI::App> make_app(runner& run) {
    auto app = std::make_unique<CLI::App>(
        "orderly: TCP and Unix stream sockets that end in order.\n"
        "netcat done right (connect, listen), test servers (serve) and live experiments that show\n"
        "how connections end (lab).",
        "orderly");
    app->require_subcommand(1);
    app->footer(std::string("Examples:\n"
                            "  printf 'hello' | orderly connect 127.0.0.1:7007\n"
                            "  orderly listen 127.0.0.1:0\n"
                            "  orderly serve reply --bytes 1M --close naive 127.0.0.1:0\n"
                            "  orderly lab naive-close-loses-data --svg build/lab\n"
                            "Run 'orderly SUBCOMMAND --help' for the options of each.\n\n") +
                exit_codes_help);

    add_connect_command(*app, run);
    add_listen_command(*app, run);
    add_serve_command(*app, run);
    add_lab_command(*app, run);
    add_doctor_command(*app, run);
    return app;
}

}  // namespace orderly::cli
