#include "support/nstat.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace orderly::test {

std::optional<std::uint64_t> tcp_ext_counter(std::string_view name) {
    std::ifstream in("/proc/net/netstat");
    std::string names;
    std::string values;
    // The file alternates a header line and a value line per group.
    while (std::getline(in, names) && std::getline(in, values)) {
        if (names.rfind("TcpExt:", 0) != 0) continue;
        std::istringstream n(names);
        std::istringstream v(values);
        std::string key;
        std::string val;
        n >> key;
        v >> val;  // skip the "TcpExt:" labels
        while (n >> key && v >> val) {
            if (key == name) return std::stoull(val);
        }
    }
    return std::nullopt;
}

}  // namespace orderly::test
