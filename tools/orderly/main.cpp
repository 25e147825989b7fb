// orderly: the command-line tool. main() only parses; each subcommand lives in its own file.

#include <fcntl.h>
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "cli.hpp"

namespace {

// A closed stdin, stdout or stderr (`<&-`) would let the first socket take descriptor 0, 1 or 2
// and be read as stdin or written as output; /dev/null in their place makes them empty instead.
void open_standard_descriptors() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/null", O_RDWR) != fd) return;
    }
}

int run_main(int argc, char** argv) {
    using namespace orderly::cli;
    open_standard_descriptors();
    CLI::App app{
        "orderly: TCP and Unix stream sockets that end in order.\n"
        "netcat done right (connect, listen), test servers (serve) and live experiments that show\n"
        "how connections end (lab).",
        "orderly"};
    app.require_subcommand(1);
    app.footer(std::string("Examples:\n"
                           "  printf 'hello' | orderly connect 127.0.0.1:7007\n"
                           "  orderly listen 127.0.0.1:0\n"
                           "  orderly serve reply --bytes 1M --close naive 127.0.0.1:0\n"
                           "  orderly lab naive-close-loses-data --svg build/lab\n"
                           "Run 'orderly SUBCOMMAND --help' for the options of each.\n\n") +
               exit_codes_help);

    runner run;
    add_connect_command(app, run);
    add_listen_command(app, run);
    add_serve_command(app, run);
    add_lab_command(app, run);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // Usage errors are exit 2 whatever CLI11's own numbering says, and the message names the
        // option or value that was wrong.
        fmt::print(stderr, "orderly: {}\nRun 'orderly --help' (or 'orderly SUBCOMMAND --help').\n",
                   e.what());
        return exit_usage;
    }
    if (!run) return exit_usage;
    try {
        return run();
    } catch (const std::exception& e) {
        print_error(e.what());
        return exit_failure;
    }
}

}  // namespace

int main(int argc, char** argv) {
    // Building the option tables allocates; an exception there is a bug, reported, not a crash.
    try {
        return run_main(argc, argv);
    } catch (const std::exception& e) {
        orderly::cli::print_error(e.what());
    } catch (...) {
        orderly::cli::print_error("unexpected exception");
    }
    return orderly::cli::exit_failure;
}
