#include "orderly/net/hosts_file.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "orderly/net/resolve.hpp"

namespace orderly {
namespace {

bool same_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The blank-separated fields of one line, up to its comment.
std::vector<std::string_view> fields(std::string_view line) {
    line = line.substr(0, line.find('#'));
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at < line.size()) {
        while (at < line.size() && (line[at] == ' ' || line[at] == '\t' || line[at] == '\r')) {
            ++at;
        }
        const std::size_t start = at;
        while (at < line.size() && line[at] != ' ' && line[at] != '\t' && line[at] != '\r') {
            ++at;
        }
        if (at > start) out.push_back(line.substr(start, at - start));
    }
    return out;
}

}  // namespace

result<std::vector<endpoint>, error_info> hosts_file_lookup(std::string_view host,
                                                            std::string_view port,
                                                            const std::string& path) {
    std::vector<endpoint> out;
    if (host.empty()) return out;
    std::ifstream in(path);
    std::string line;
    // A hosts file is a few lines; the cap only keeps a runaway file from stalling a connect.
    for (int n = 0; n < 100000 && std::getline(in, line); ++n) {
        const auto f = fields(line);
        if (f.size() < 2) continue;
        if (std::none_of(f.begin() + 1, f.end(),
                         [&](std::string_view name) { return same_name(name, host); })) {
            continue;
        }
        // Not an address (a malformed line): skipped, as the C library does. Checked before
        // resolve(), which would look a name up.
        const std::string ip(f[0]);
        const bool v6 = ip.find(':') != std::string::npos;
        if (!endpoint::parse(v6 ? "[" + ip + "]:0" : ip + ":0")) continue;
        // A numeric host: resolve() parses it (and a service name) without any lookup.
        auto addrs = resolve(ip, port);
        if (!addrs) return failure{addrs.error()};
        for (const endpoint& e : *addrs) {
            if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
        }
    }
    std::stable_partition(out.begin(), out.end(),
                          [](const endpoint& e) { return e.family() == address_family::ipv6; });
    return out;
}

}  // namespace orderly
