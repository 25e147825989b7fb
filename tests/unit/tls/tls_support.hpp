#pragma once
// Fixtures for the TLS tests: certificate files in a temp dir, a Python/openssl peer process
// with bounded waits.
#include <string>
#include <vector>

namespace orderly::test {

// A fresh temp dir holding cert.pem/key.pem from make_self_signed (expired when asked).
struct cert_dir {
    explicit cert_dir(bool expired = false,
                      std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"});
    ~cert_dir();
    cert_dir(const cert_dir&) = delete;
    cert_dir& operator=(const cert_dir&) = delete;
    std::string dir, cert, key;
};

// A child process; stdout is read line by line. The destructor kills it if still running.
class peer_process {
  public:
    explicit peer_process(const std::vector<std::string>& argv);
    ~peer_process();
    peer_process(const peer_process&) = delete;
    peer_process& operator=(const peer_process&) = delete;
    // The next line (without newline); empty at EOF or after `ms` milliseconds.
    std::string line(int ms = 10000);
    // Everything left on stdout until EOF, then the exit status (-1 after killing it at `ms`).
    int wait(std::string& rest, int ms = 10000);

  private:
    int pid_ = -1;
    int out_ = -1;
    std::string buf_;
};

std::string tls_peer_script();

}  // namespace orderly::test
