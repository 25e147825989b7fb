#include "address_hints.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "orderly/core/unique_fd.hpp"

namespace orderly::detail {
namespace {

std::string quoted(std::string_view s) {
    return "'" + std::string(s) + "'";
}

// Does anyone accept connections on the Unix socket at `path`? (a short, non-blocking try)
bool someone_listens(const std::string& path) {
    sockaddr_un sun{};
    if (path.size() >= sizeof sun.sun_path) return false;
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun);
    return rc == 0 || errno == EAGAIN;  // EAGAIN: listening, backlog full
}

}  // namespace

std::optional<std::string> scheme_hint(std::string_view text) {
    const auto sep = text.find("://");
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    const std::string_view scheme = text.substr(0, sep);
    if (!std::isalpha(static_cast<unsigned char>(scheme.front()))) return std::nullopt;
    for (char c : scheme) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
            return std::nullopt;
        }
    }
    std::string_view rest = text.substr(sep + 3);
    rest = rest.substr(0, rest.find('/'));
    return quoted(text) + " starts with a URL scheme '" + std::string(scheme) +
           "://': an address has none; drop it" +
           (rest.empty() ? "" : " and write " + std::string(rest)) +
           " (HOST:PORT, [IPv6]:PORT or unix:/path)";
}

std::optional<std::string> signed_port_hint(std::string_view port, std::string_view text) {
    if (port.empty() || (port.front() != '-' && port.front() != '+')) return std::nullopt;
    return "port " + quoted(port) + " in " + quoted(text) +
           " has a sign: expected decimal digits (0-65535) or a service name like http";
}

bool looks_dotted_numeric(std::string_view host) noexcept {
    bool dot = false;
    for (char c : host) {
        if (c == '.') {
            dot = true;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    return dot;
}

std::string unix_path_in_use_hint(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return " (another socket is bound to this path; choose another path)";
    }
    if (S_ISSOCK(st.st_mode)) {
        if (someone_listens(path)) {
            return " (a process is listening on this socket; choose another path or stop it)";
        }
        return " (a stale socket file from a process that is gone; remove it (rm " + path +
               ") or set listen_options::replace_unix_socket_file)";
    }
    const char* kind = S_ISREG(st.st_mode)   ? "a regular file"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISLNK(st.st_mode) ? "a symbolic link"
                                             : "a file that is not a socket";
    return std::string(" (") + quoted(path) + " is " + kind +
           ", not a socket: choose another path; never remove it unless you know it is yours)";
}

}  // namespace orderly::detail
