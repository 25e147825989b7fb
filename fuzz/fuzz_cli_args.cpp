// fuzz_cli_args: the command line of `orderly`, parsed exactly as main() parses it but without
// running the chosen subcommand. The input is split into arguments at NUL and newline bytes
// (argv[0] is "orderly"); every argument is also fed to the value parsers on its own.
// Properties: parsing throws nothing but CLI::ParseError (usage errors, --help); a parse that
// succeeds chose exactly one subcommand, whose work is ready to run, and every DURATION or BYTES
// value it accepted is one that the subcommand's parse_duration()/parse_size() can read (they
// dereference the result); the value parsers agree with their CLI11 checks and with each other.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "app.hpp"
#include "cli.hpp"
#include "fuzz_check.hpp"

namespace {

namespace cli = orderly::cli;

std::vector<std::string> split_args(std::string_view in) {
    std::vector<std::string> args{"orderly"};
    std::string current;
    for (char c : in) {
        if (c == '\0' || c == '\n') {
            args.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) args.push_back(current);
    return args;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

void check_value_parsers(const std::string& arg) {
    const auto d = cli::parse_duration(arg);
    FUZZ_CHECK(cli::check_duration(arg).empty() == d.has_value());
    if (d) {
        FUZZ_CHECK(d->count() >= 0);
        FUZZ_CHECK(*d <= std::chrono::hours(2778));  // the 1e7 s cap
        // The same number in a smaller unit is never longer.
        if (arg.find_first_not_of("0123456789.") == std::string::npos) {
            const auto ms = cli::parse_duration(arg + "ms");
            FUZZ_CHECK(ms.has_value() && *ms <= *d);
            FUZZ_CHECK(cli::parse_duration(arg + "s") == d);
        }
    }
    const auto n = cli::parse_size(arg);
    FUZZ_CHECK(cli::check_size(arg).empty() == n.has_value());
    if (n && all_digits(arg)) {
        const auto k = cli::parse_size(arg + "K");
        if (*n <= std::numeric_limits<std::uint64_t>::max() / 1024) {
            FUZZ_CHECK(k.has_value() && *k == *n * 1024);
        } else {
            FUZZ_CHECK(!k.has_value());
        }
        FUZZ_CHECK(cli::parse_size(arg + "B") == n);
    }
    const auto action = cli::parse_stdin_eof_action(arg);
    FUZZ_CHECK((action == cli::stdin_eof_action::close) == (arg == "close"));
    FUZZ_CHECK((action == cli::stdin_eof_action::keep) == (arg == "keep"));
    // Every error maps to one of the documented exit codes.
    const int value = static_cast<int>(arg.size() % 256);
    for (const auto* cat :
         {&std::system_category(), &std::generic_category(), &orderly::orderly_category()}) {
        const int code = cli::exit_code_for(std::error_code(value, *cat));
        FUZZ_CHECK(code >= cli::exit_ok && code <= cli::exit_tls_failed);  // 8 is doctor's alone
        FUZZ_CHECK((code == cli::exit_ok) == (value == 0));
    }
}

// The values of the chosen subcommand that its run function reads with `*parse_...(text)`.
void check_accepted_values(const CLI::App& sub) {
    for (const CLI::Option* opt : sub.get_options()) {
        const std::string type = opt->get_type_name();
        for (const std::string& value : opt->results()) {
            if (type == "DURATION") FUZZ_CHECK(cli::parse_duration(value).has_value());
            if (type == "BYTES") FUZZ_CHECK(cli::parse_size(value).has_value());
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::string> args =
        split_args(std::string_view(reinterpret_cast<const char*>(data), size));
    for (std::size_t i = 1; i < args.size(); ++i)
        check_value_parsers(args[i]);

    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const auto& a : args)
        argv.push_back(a.c_str());

    // Built once: constructing the option tables costs far more than parsing (thousands of
    // allocations under ASan). CLI11 clears every result and subcommand on each parse(), and the
    // subcommand callbacks only store `run`, which is reset here, so inputs do not see each other.
    static cli::runner run;
    static const std::unique_ptr<CLI::App> app = cli::make_app(run);
    run = nullptr;
    try {
        app->parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError&) {
        return 0;  // a usage error or --help: main() prints it and exits 2 (or 0)
    }
    const auto chosen = app->get_subcommands();
    FUZZ_CHECK(chosen.size() == 1);
    FUZZ_CHECK(static_cast<bool>(run));
    check_accepted_values(*chosen.front());
    return 0;
}
