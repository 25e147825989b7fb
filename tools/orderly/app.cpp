// The `orderly` command line: the top-level app and its subcommands (each in its own file).

#include "app.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace orderly::cli {

std::unique_ptr<CLI::App> make_app(runner& run) {
    auto app = std::make_unique<CLI::App>(
        "orderly: TCP and Unix stream sockets that end in order.\n"
        "netcat done right (connect, listen), test servers (serve) and live experiments that show\n"
        "how connections end (lab).",
        "orderly");
    app->require_subcommand(1);
    app->set_version_flag("--version", std::string("orderly ") + ORDERLY_VERSION,
                          "Print the version and exit");
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
    add_cert_command(*app, run);
    return app;
}

namespace {

// Edits (insert, delete, replace) from a to b: Levenshtein's distance, two rows.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t replace = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, replace});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

namespace {

struct closest {
    std::string name;
    std::size_t distance = SIZE_MAX;

    void consider(std::string_view word, const std::string& candidate) {
        // A prefix ("con", "lis") counts as close as one edit.
        const std::size_t d = candidate.starts_with(word) ? 1 : edit_distance(word, candidate);
        if (d < distance) {
            distance = d;
            name = candidate;
        }
    }
    // Suggest only what is plausibly a typo: at most 2 edits, and not most of the word.
    [[nodiscard]] std::string suggestion(std::string_view word) const {
        if (distance <= 2 && distance < word.size()) return ": did you mean '" + name + "'?";
        return {};
    }
};

}  // namespace

std::optional<std::string> unknown_subcommand(const CLI::App& app, std::string_view word) {
    if (word.empty() || word.front() == '-') return std::nullopt;
    std::string names;
    closest best;
    for (const CLI::App* sub : app.get_subcommands({})) {
        const std::string& name = sub->get_name();
        if (name == word) return std::nullopt;
        names += (names.empty() ? "" : ", ") + name;
        best.consider(word, name);
    }
    return "unknown subcommand '" + std::string(word) + "'" + best.suggestion(word) +
           " (subcommands: " + names + ")";
}

std::optional<std::string> unknown_option(const CLI::App& app, std::string_view word) {
    if (word.size() < 2 || word.front() != '-') return std::nullopt;
    const std::string_view name = word.substr(0, word.find('='));
    closest best;
    for (const CLI::Option* opt : app.get_options()) {
        for (const std::string& l : opt->get_lnames()) {
            if (name == "--" + l) return std::nullopt;
            best.consider(name, "--" + l);
        }
        for (const std::string& s : opt->get_snames()) {
            if (name == "-" + s) return std::nullopt;
        }
    }
    return "unknown option '" + std::string(name) + "'" + best.suggestion(name) +
           " (before a subcommand only --help and --version; options of a subcommand go after "
           "it: orderly SUBCOMMAND --help)";
}

}  // namespace orderly::cli
