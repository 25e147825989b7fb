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

std::optional<std::string> unknown_subcommand(const CLI::App& app, std::string_view word) {
    if (word.empty() || word.front() == '-') return std::nullopt;
    std::string names;
    std::string best;
    std::size_t best_distance = SIZE_MAX;
    for (const CLI::App* sub : app.get_subcommands({})) {
        const std::string& name = sub->get_name();
        if (name == word) return std::nullopt;
        names += (names.empty() ? "" : ", ") + name;
        // A prefix ("con", "lis") counts as close as one edit.
        const std::size_t d = name.starts_with(word) ? 1 : edit_distance(word, name);
        if (d < best_distance) {
            best_distance = d;
            best = name;
        }
    }
    std::string out = "unknown subcommand '" + std::string(word) + "'";
    // Suggest only what is plausibly a typo: at most 2 edits, and not most of the word.
    if (best_distance <= 2 && best_distance < word.size()) {
        out += ": did you mean '" + best + "'?";
    }
    return out + " (subcommands: " + names + ")";
}

}  // namespace orderly::cli
