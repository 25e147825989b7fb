#include "tls_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "orderly/tls/self_signed.hpp"

namespace orderly::test {

cert_dir::cert_dir(bool expired, std::vector<std::string> names) {
    char tmpl[] = "/tmp/orderly-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    self_signed_options o;
    o.names = std::move(names);
    if (expired) {
        o.valid_from = -std::chrono::hours(48);
        o.valid_until = -std::chrono::hours(24);
    }
    auto pem = make_self_signed(o).value();
    write_pem_file(cert, pem.cert).value();
    write_pem_file(key, pem.key).value();
}

cert_dir::~cert_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

peer_process::peer_process(const std::vector<std::string>& argv) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(p[1], 1);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(p[1]);
    out_ = p[0];
}

peer_process::~peer_process() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
}

std::string peer_process::line(int ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string l = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return l;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        if (left.count() <= 0) return {};
        pollfd pfd{out_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return {};
        char b[512];
        const ssize_t n = ::read(out_, b, sizeof b);
        if (n <= 0) return {};
        buf_.append(b, static_cast<std::size_t>(n));
    }
}

int peer_process::wait(std::string& rest, int ms) {
    for (std::string l = line(ms); !l.empty(); l = line(ms))
        rest += l + "\n";
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > end) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
            return -1;
        }
        ::usleep(10000);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string tls_peer_script() {
    return ORDERLY_TLS_PEER;
}

}  // namespace orderly::test
