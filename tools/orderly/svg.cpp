// Ladder diagrams: one row per timeline event, time flowing down; a call that spans other events
// is drawn as a bar from its start row to a row where it returned, which shows its result and
// the states at its return. Rows are evenly spaced rather
// than to scale, because loopback packets are microseconds apart while the calls between them
// take milliseconds; the time of each row is written beside it instead.

#include "svg.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <utility>

#include "lab_segments.hpp"

namespace orderly::cli {

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                // Control characters are not allowed in XML 1.0 text.
                if (static_cast<unsigned char>(ch) >= 0x20 || ch == '\n' || ch == '\t') out += ch;
        }
    }
    return out;
}

namespace {

constexpr int width = 1400;
constexpr int client_x = 520;
constexpr int server_x = 880;
constexpr int top = 110;
constexpr int row = 38;
// Notes are wrapped to this many characters: at font-size 11 a monospace character is at most
// 0.6 em (6.6 px) wide, so a centred line stays 20 px clear of both timelines.
constexpr std::size_t note_cols = (server_x - client_x - 40) * 10 / 66;

const char* segment_color(const lab_event& e) {
    if (e.flags.find("RST") != std::string::npos) return "#c62828";
    if (e.flags.find("FIN") != std::string::npos) return "#1565c0";
    if (e.flags.find("SYN") != std::string::npos) return "#2e7d32";
    return "#757575";
}

bool is_client_side(const std::string& side) {
    return side.rfind("client", 0) == 0;
}

// Splits a long sentence into lines of about `cols` characters at spaces.
std::vector<std::string> wrap(std::string_view text, std::size_t cols) {
    std::vector<std::string> lines;
    std::string line;
    std::size_t i = 0;
    while (i < text.size()) {
        auto sp = text.find(' ', i);
        if (sp == std::string_view::npos) sp = text.size();
        const auto word = text.substr(i, sp - i);
        if (!line.empty() && line.size() + 1 + word.size() > cols) {
            lines.push_back(line);
            line.clear();
        }
        if (!line.empty()) line += ' ';
        line += word;
        i = sp + 1;
    }
    if (!line.empty()) lines.push_back(line);
    return lines;
}

// One drawn row: an event, or the return of a call that spans other rows.
struct drawn_row {
    const lab_event* e;
    bool is_return;  // the row where a spanning call returned (its result and states)
    std::vector<std::string> note_lines;
    int y = 0;
    int start_y = 0;     // returns: the y of the call's own row
    bool spans = false;  // a call's start row whose return row comes later
};

// A call spans when something else happened between its start and its return: it is then drawn
// from its start row down to a return row placed after the last event before it returned
// (timeline_rows).
std::vector<drawn_row> layout(const std::vector<lab_event>& events) {
    std::vector<drawn_row> rows;
    std::vector<int> start_y(events.size(), 0);
    int y = top;
    for (const auto& tr : timeline_rows(events)) {
        const auto& e = events[tr.index];
        drawn_row r{&e, tr.is_return, {}};
        if (!tr.is_return && e.what == lab_event::kind::note)
            r.note_lines = wrap(e.result, note_cols);
        r.y = y;
        r.spans = tr.spans;
        if (tr.is_return) {
            r.start_y = start_y[tr.index];
        } else {
            start_y[tr.index] = y;
        }
        const int lines = r.note_lines.empty() ? 1 : static_cast<int>(r.note_lines.size());
        y += std::max(row, 16 * lines + 14);
        rows.push_back(std::move(r));
    }
    return rows;
}

void draw_segment(std::string& s, const lab_event& e, int y) {
    const char* color = segment_color(e);
    const int x1 = e.to_server ? client_x : server_x;
    const int x2 = e.to_server ? server_x : client_x;
    s += fmt::format(
        "<line class=\"segment{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
        "stroke-width=\"1.5\"{} marker-end=\"url(#arrow{})\"/>\n",
        e.retransmission ? " retransmission" : "", x1, y - 6, x2, y + 14, color,
        e.retransmission ? " stroke-dasharray=\"6 3\"" : "", color + 1);
    const std::string flags = e.flags == "data" ? std::string() : segment_flags_note(e);
    s += fmt::format(
        "<text class=\"segment-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\" "
        "font-size=\"11\">{}{}</text>\n",
        (client_x + server_x) / 2, y - 2, color, xml_escape(e.result),
        flags.empty() ? std::string()
                      : " <tspan class=\"flags\" font-size=\"9\" fill=\"#888\">" +
                            xml_escape(flags) + "</tspan>");
}

void draw_call(std::string& s, const drawn_row& r, bool spans) {
    const lab_event& e = *r.e;
    const bool left = is_client_side(e.side);
    const int line_x = left ? client_x : server_x;
    const int x = left ? client_x - 10 : server_x + 10;
    const char* anchor = left ? "end" : "start";
    const std::string& state = left ? e.client_state : e.server_state;
    const std::string returned = fmt::format(
        "<text class=\"call-return\" x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"11\" "
        "fill=\"#333\">-&gt; {} [{}]</text>\n",
        x, r.y + (r.is_return ? 4 : 14), anchor, xml_escape(e.result), xml_escape(state));
    if (r.is_return) {
        s += fmt::format(
            "<rect class=\"span\" x=\"{}\" y=\"{}\" width=\"6\" height=\"{}\" fill=\"#455a64\" "
            "opacity=\"0.6\"/>\n",
            line_x - 3, r.start_y, r.y - r.start_y);
        s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"black\"/>\n", line_x, r.y);
        s += returned;
        return;
    }
    s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"black\"/>\n", line_x, r.y);
    s += fmt::format(
        "<text class=\"call\" x=\"{}\" y=\"{}\" text-anchor=\"{}\" "
        "font-weight=\"bold\">{}</text>\n",
        x, r.y, anchor, xml_escape(e.side + ": " + e.call + (spans ? " ..." : "")));
    if (!spans) s += returned;
}

}  // namespace

std::string render_ladder_svg(const ladder& l) {
    const auto verdict_lines = wrap(l.verdict, 150);
    const auto note_lines = wrap(l.capture_note, 150);
    const auto rows = layout(l.events);
    int bottom = top + 20;
    for (const auto& r : rows)
        bottom = std::max(bottom, r.y + row);
    const int height =
        bottom + 30 + static_cast<int>(verdict_lines.size() + note_lines.size()) * 18;

    std::string s;
    s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    s += fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
        "viewBox=\"0 0 {0} {1}\" font-family=\"monospace\" font-size=\"12\">\n",
        width, height);
    s += "<defs>\n";
    for (const char* color : {"#c62828", "#1565c0", "#2e7d32", "#757575"}) {
        s += fmt::format(
            "<marker id=\"arrow{0}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
            "markerWidth=\"8\" "
            "markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" "
            "fill=\"#{0}\"/></marker>\n",
            color + 1);
    }
    s += "</defs>\n";
    s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", width, height);
    s += fmt::format("<text x=\"20\" y=\"30\" font-size=\"18\" font-weight=\"bold\">{}</text>\n",
                     xml_escape(l.name));
    s += fmt::format("<text x=\"20\" y=\"52\" font-size=\"13\">{}</text>\n", xml_escape(l.title));
    s += fmt::format(
        "<text x=\"{}\" y=\"88\" text-anchor=\"middle\" font-weight=\"bold\">client</text>\n",
        client_x);
    s += fmt::format(
        "<text x=\"{}\" y=\"88\" text-anchor=\"middle\" font-weight=\"bold\">server</text>\n",
        server_x);
    for (const int x : {client_x, server_x}) {
        s += fmt::format(
            "<line class=\"timeline\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\" "
            "stroke-width=\"2\"/>\n",
            x, top - 12, bottom);
    }

    for (const auto& r : rows) {
        const lab_event& e = *r.e;
        const double t = r.is_return ? e.t_end_ms : e.t_ms;
        s += fmt::format("<text x=\"10\" y=\"{}\" fill=\"#555\">{:.3f} ms</text>\n", r.y + 4, t);
        switch (e.what) {
            case lab_event::kind::segment:
                draw_segment(s, e, r.y);
                break;
            case lab_event::kind::call:
                draw_call(s, r, r.spans);
                break;
            case lab_event::kind::note: {
                // Wrapped to fit between the timelines, so no line crosses them.
                int ly = r.y + 4;
                for (const auto& line : r.note_lines) {
                    s += fmt::format(
                        "<text class=\"note\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                        "font-style=\"italic\" fill=\"#6a1b9a\" font-size=\"11\">{}</text>\n",
                        (client_x + server_x) / 2, ly, xml_escape(line));
                    ly += 16;
                }
                break;
            }
        }
    }

    int ty = bottom + 24;
    for (const auto& line : verdict_lines) {
        s += fmt::format("<text x=\"20\" y=\"{}\" font-size=\"12\">{}</text>\n", ty,
                         xml_escape(line));
        ty += 18;
    }
    for (const auto& line : note_lines) {
        s += fmt::format("<text x=\"20\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>\n", ty,
                         xml_escape(line));
        ty += 18;
    }
    s += "</svg>\n";
    return s;
}

}  // namespace orderly::cli
