// orderly: the command-line tool. main() only parses; each subcommand lives in its own file.

#include <fcntl.h>
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <string_view>
#include <vector>

#include "app.hpp"
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
    runner run;
    const auto app_ptr = make_app(run);
    CLI::App& app = *app_ptr;

    // `orderly help [SUBCOMMAND]` is `orderly [SUBCOMMAND] --help`, as git and go do it.
    std::vector<char*> args(argv, argv + argc);
    static char help_flag[] = "--help";
    if (args.size() > 1 && std::string_view(args[1]) == "help") {
        args.erase(args.begin() + 1);
        args.push_back(help_flag);
    }
    if (args.size() > 1) {
        auto unknown = unknown_subcommand(app, args[1]);
        if (!unknown) unknown = unknown_option(app, args[1]);
        if (unknown) {
            fmt::print(stderr, "orderly: {}\nRun 'orderly --help' for the subcommands.\n",
                       *unknown);
            return exit_usage;
        }
    }
    try {
        app.parse(static_cast<int>(args.size()), args.data());
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
