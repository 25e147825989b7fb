#pragma once
// The whole command line of `orderly`, built apart from main() so that it can be parsed without
// running anything (the fuzz target fuzz/fuzz_cli_args.cpp does exactly that).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli.hpp"

namespace orderly::cli {

// Every subcommand with its options. Parsing the app never does I/O of its own: the chosen
// subcommand's callback only stores its work in `run`, which must outlive the app. CLI11 reports
// usage errors (and --help) by throwing CLI::ParseError; the caller decides what to print.
std::unique_ptr<CLI::App> make_app(runner& run);

// When the first word after `orderly` is not an option and names no subcommand ("connec",
// "bogus"): the message naming it and the closest subcommand. nullopt otherwise.
std::optional<std::string> unknown_subcommand(const CLI::App& app, std::string_view word);
// A word before any subcommand that looks like an option and is none of the top-level ones
// ("--versoin"): the message, with the closest name. Otherwise nullopt.
std::optional<std::string> unknown_option(const CLI::App& app, std::string_view word);

}  // namespace orderly::cli
