#pragma once
// Ladder diagrams of lab scenarios as standalone SVG: the client's and the server's timelines as
// two vertical lines, the captured segments as arrows between them, the calls annotated beside
// the side that made them.

#include <string>
#include <string_view>
#include <vector>

#include "lab.hpp"

namespace orderly::cli {

struct ladder {
    std::string_view name;
    std::string_view title;
    std::string verdict;
    std::string capture_note;  // why segments are missing, when they are
    std::vector<lab_event> events;
};

std::string render_ladder_svg(const ladder& l);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string xml_escape(std::string_view s);

}  // namespace orderly::cli
