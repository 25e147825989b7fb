// orderly_load: the load generator behind benchmarks/run.py. One thread, one epoll set,
// non-blocking sockets, raw syscalls. It deliberately does not use the orderly library: it
// measures it (and five other peers), so it must not share its code paths or its bugs.
//
// Prints exactly one JSON object on stdout; diagnostics go to stderr. Exit status 0 when the
// workload ran to the end without an error, 1 otherwise (the JSON then has "error"), 2 for bad
// arguments, 3 when the watchdog fired.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Time

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double now_s() {
    return static_cast<double>(now_ns()) * 1e-9;
}

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// ---------------------------------------------------------------------------------------------
// JSON output: a flat object, keys in insertion order. Numbers that are not finite become null so
// the driver never has to parse "inf".

class json_object {
  public:
    void raw(std::string_view key, std::string value) {
        for (auto& f : fields_) {
            if (f.first == key) {
                f.second = std::move(value);
                return;
            }
        }
        fields_.emplace_back(std::string(key), std::move(value));
    }
    void num(std::string_view key, double v) {
        raw(key, std::isfinite(v) ? fmt::format("{}", v) : std::string("null"));
    }
    void num(std::string_view key, std::optional<double> v) {
        if (v) {
            num(key, *v);
        } else {
            raw(key, "null");
        }
    }
    void integer(std::string_view key, std::int64_t v) { raw(key, fmt::format("{}", v)); }
    void integer(std::string_view key, std::uint64_t v) { raw(key, fmt::format("{}", v)); }
    void boolean(std::string_view key, bool v) { raw(key, v ? "true" : "false"); }
    void str(std::string_view key, std::string_view v) {
        std::string out = "\"";
        for (char ch : v) {
            if (ch == '"' || ch == '\\') {
                out += '\\';
                out += ch;
            } else if (static_cast<unsigned char>(ch) < 0x20) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
            } else {
                out += ch;
            }
        }
        out += '"';
        raw(key, std::move(out));
    }
    [[nodiscard]] std::string dump() const {
        std::string out = "{";
        for (std::size_t i = 0; i < fields_.size(); ++i) {
            if (i) out += ", ";
            out += fmt::format("\"{}\": {}", fields_[i].first, fields_[i].second);
        }
        out += "}\n";
        return out;
    }

  private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

json_object g_out;
std::string g_error;  // first error wins: later ones are usually consequences

void set_error(std::string msg) {
    fmt::print(stderr, "orderly_load: {}\n", msg);
    if (g_error.empty()) g_error = std::move(msg);
}

// The watchdog is the last line of defence against a bug in a loop below: every loop is bounded by
// the hard cap already, but a process that hangs would stall the whole benchmark run.
char g_watchdog_json[256];
std::size_t g_watchdog_len = 0;

extern "C" void on_watchdog(int) {
    ssize_t ignored = write(STDOUT_FILENO, g_watchdog_json, g_watchdog_len);
    (void)ignored;
    _exit(3);
}

// ---------------------------------------------------------------------------------------------
// Options

struct options {
    std::string target;
    sockaddr_in addr{};
    std::string workload;
    std::size_t connections = 0;  // 0: the workload's default
    std::size_t size = 0;         // 0: the workload's default
    double seconds = -1;          // < 0: the workload's default
    double warmup = 0.5;
    double hang_after = 10;  // stop: how long after SIGTERM a connection may stay open
    pid_t server_pid = 0;
    std::uint64_t count = 0;   // churn: total connections (0 = bounded by time only)
    std::size_t sources = 16;  // churn: source addresses 127.0.0.1..N, see run_churn
};

[[noreturn]] void usage(std::string_view why) {
    fmt::print(stderr,
               "orderly_load: {}\n"
               "usage: orderly_load --target 127.0.0.1:PORT --workload "
               "latency|pingpong|bulk|churn|idle|stop\n"
               "       [--connections N] [--size BYTES] [--seconds S] [--warmup S]\n"
               "       [--server-pid PID] [--count N] [--hang-after S] [--sources N]\n",
               why);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) usage(fmt::format("{} needs a value", a));
            return argv[++i];
        };
        auto number = [&]() -> double {
            std::string v(value());
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(d >= 0)) {
                usage(fmt::format("bad number '{}' for {}", v, a));
            }
            return d;
        };
        if (a == "--target") {
            o.target = value();
        } else if (a == "--workload") {
            o.workload = value();
        } else if (a == "--connections") {
            o.connections = static_cast<std::size_t>(number());
        } else if (a == "--size") {
            o.size = static_cast<std::size_t>(number());
        } else if (a == "--seconds") {
            o.seconds = number();
        } else if (a == "--warmup") {
            o.warmup = number();
        } else if (a == "--hang-after") {
            o.hang_after = number();
        } else if (a == "--server-pid") {
            o.server_pid = static_cast<pid_t>(number());
        } else if (a == "--count") {
            o.count = static_cast<std::uint64_t>(number());
        } else if (a == "--sources") {
            o.sources = std::clamp<std::size_t>(static_cast<std::size_t>(number()), 1, 250);
        } else if (a == "-h" || a == "--help") {
            usage("help");
        } else {
            usage(fmt::format("unknown argument '{}'", a));
        }
    }
    if (o.target.empty() || o.workload.empty()) usage("--target and --workload are required");
    auto colon = o.target.rfind(':');
    if (colon == std::string::npos) usage("--target must be IPv4:PORT");
    std::string host = o.target.substr(0, colon);
    int port = std::atoi(o.target.c_str() + colon + 1);
    o.addr.sin_family = AF_INET;
    o.addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host.c_str(), &o.addr.sin_addr) != 1) {
        usage(fmt::format("bad --target '{}'", o.target));
    }
    struct defaults {
        std::string_view name;
        std::size_t connections;
        std::size_t size;
        double seconds;
    };
    static constexpr defaults table[] = {
        {"latency", 1, 64, 5}, {"pingpong", 100, 64, 5}, {"bulk", 1, 16384, 5},
        {"churn", 16, 100, 5}, {"idle", 1000, 64, 1},    {"stop", 100, 64, 1},
    };
    const defaults* d = nullptr;
    for (const auto& t : table) {
        if (t.name == o.workload) d = &t;
    }
    if (!d) usage(fmt::format("unknown workload '{}'", o.workload));
    if (o.connections == 0) o.connections = d->connections;
    if (o.size == 0) o.size = d->size;
    if (o.seconds < 0) o.seconds = d->seconds;
    if (o.workload == "latency" || o.workload == "bulk") o.connections = 1;
    if (o.size > (1u << 20)) usage("--size is at most 1 MiB");
    return o;
}

// ---------------------------------------------------------------------------------------------
// /proc readers. They return nothing when the process or file is gone; the JSON then says null.

std::string read_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return out;
}

// utime + stime of the whole process (all threads), in seconds.
std::optional<double> proc_cpu_s(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    std::string s = read_file(fmt::format("/proc/{}/stat", pid));
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    auto close_paren = s.rfind(')');
    if (close_paren == std::string::npos) return std::nullopt;
    const char* p = s.c_str() + close_paren + 2;  // at field 3 (state)
    // utime and stime are fields 14 and 15; we are at field 3.
    for (int field = 3; field < 14; ++field) {
        p = std::strchr(p, ' ');
        if (!p) return std::nullopt;
        ++p;
    }
    char* end = nullptr;
    unsigned long long utime = std::strtoull(p, &end, 10);
    unsigned long long stime = std::strtoull(end, nullptr, 10);
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<std::int64_t> proc_rss_kib(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    std::string s = read_file(fmt::format("/proc/{}/status", pid));
    auto at = s.find("VmRSS:");
    if (at == std::string::npos) return std::nullopt;
    return std::strtoll(s.c_str() + at + 6, nullptr, 10);
}

// One counter from the "Header: names\nHeader: values" pairs of /proc/net/snmp and netstat.
std::optional<std::int64_t> net_counter(const char* file, std::string_view prefix,
                                        std::string_view name) {
    std::string s = read_file(file);
    std::size_t pos = 0;
    while (pos < s.size()) {
        auto eol = s.find('\n', pos);
        if (eol == std::string::npos) eol = s.size();
        std::string_view names(s.data() + pos, eol - pos);
        pos = eol + 1;
        if (names.substr(0, prefix.size()) != prefix) continue;
        auto eol2 = s.find('\n', pos);
        if (eol2 == std::string::npos) eol2 = s.size();
        std::string_view values(s.data() + pos, eol2 - pos);
        // Walk both lines word by word.
        std::size_t ni = 0;
        std::size_t vi = 0;
        while (ni < names.size() && vi < values.size()) {
            auto ne = names.find(' ', ni);
            auto ve = values.find(' ', vi);
            if (ne == std::string_view::npos) ne = names.size();
            if (ve == std::string_view::npos) ve = values.size();
            if (names.substr(ni, ne - ni) == name) {
                return std::strtoll(std::string(values.substr(vi, ve - vi)).c_str(), nullptr, 10);
            }
            ni = ne + 1;
            vi = ve + 1;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

struct tcp_counters {
    std::optional<std::int64_t> out_rsts, abort_on_close, abort_on_data;
};

tcp_counters read_tcp_counters() {
    return {net_counter("/proc/net/snmp", "Tcp:", "OutRsts"),
            net_counter("/proc/net/netstat", "TcpExt:", "TCPAbortOnClose"),
            net_counter("/proc/net/netstat", "TcpExt:", "TCPAbortOnData")};
}

void put_tcp_deltas(const tcp_counters& before, const tcp_counters& after) {
    auto delta = [](auto a, auto b) -> std::optional<double> {
        if (!a || !b) return std::nullopt;
        return static_cast<double>(*b - *a);
    };
    // System-wide counters: anything else running on the machine shows up here too.
    g_out.num("system_tcp_out_rsts_delta", delta(before.out_rsts, after.out_rsts));
    g_out.num("system_tcp_abort_on_close_delta",
              delta(before.abort_on_close, after.abort_on_close));
    g_out.num("system_tcp_abort_on_data_delta", delta(before.abort_on_data, after.abort_on_data));
}

// ---------------------------------------------------------------------------------------------
// The byte pattern every workload sends: byte i of a connection's stream is table[i % period].
// The period is prime, so a lost, repeated or reordered chunk of any power-of-two size shows up as
// a mismatch, and any window of up to 1 MiB is contiguous in the table (no per-byte arithmetic on
// the hot path, just memcmp).

constexpr std::size_t pattern_period = 65521;
constexpr std::size_t pattern_window = std::size_t{1} << 20;

class pattern {
  public:
    pattern() : bytes_(pattern_period + pattern_window) {
        for (std::size_t i = 0; i < bytes_.size(); ++i) {
            auto x = static_cast<std::uint32_t>((i % pattern_period) * 2654435761u);
            x ^= x >> 15;
            bytes_[i] = static_cast<char>(x & 0xff);
        }
    }
    [[nodiscard]] const char* at(std::uint64_t offset) const {
        return bytes_.data() + offset % pattern_period;
    }
    [[nodiscard]] bool matches(std::uint64_t offset, const char* data, std::size_t n) const {
        while (n > 0) {
            std::size_t chunk = std::min(n, pattern_window);
            if (std::memcmp(at(offset), data, chunk) != 0) return false;
            offset += chunk;
            data += chunk;
            n -= chunk;
        }
        return true;
    }

  private:
    std::vector<char> bytes_;
};

const pattern& the_pattern() {
    static const pattern p;
    return p;
}

// ---------------------------------------------------------------------------------------------
// Sockets and epoll

bool is_reset(int err) {
    return err == ECONNRESET || err == EPIPE;
}

// Starts a non-blocking connect. Returns the descriptor (connect done or in progress) or -errno.
int start_connect(const sockaddr_in& to, const sockaddr_in* from) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (from) {
        // Let connect() pick the port for the whole 4-tuple instead of bind() reserving one per
        // source address: otherwise ports run out long before the 4-tuples do.
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, reinterpret_cast<const sockaddr*>(from), sizeof *from) != 0) {
            int err = errno;
            close(fd);
            return -err;
        }
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

void set_nodelay(int fd) {
    // Every workload sends whole messages in one call; Nagle would only add delay.
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

class poller {
  public:
    poller() : fd_(epoll_create1(EPOLL_CLOEXEC)), events_(1024) {
        if (fd_ < 0) set_error(fmt::format("epoll_create1: {}", std::strerror(errno)));
    }
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;
    ~poller() { close(fd_); }

    void add(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_ADD, fd, ev, tag); }
    void mod(int fd, std::uint32_t ev, std::uint64_t tag) { ctl(EPOLL_CTL_MOD, fd, ev, tag); }
    // Returns the number of ready events (0 on timeout or EINTR).
    int wait(int timeout_ms) {
        int n = epoll_wait(fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
        return n < 0 ? 0 : n;
    }
    [[nodiscard]] const epoll_event& event(int i) const {
        return events_[static_cast<std::size_t>(i)];
    }

  private:
    void ctl(int op, int fd, std::uint32_t ev, std::uint64_t tag) {
        epoll_event e{};
        e.events = ev;
        e.data.u64 = tag;
        if (epoll_ctl(fd_, op, fd, &e) != 0) {
            set_error(fmt::format("epoll_ctl: {}", std::strerror(errno)));
        }
    }
    int fd_;
    std::vector<epoll_event> events_;
};

constexpr std::uint64_t pidfd_tag = ~std::uint64_t{0};

// Milliseconds until `deadline` (seconds, monotonic), clamped to [0, cap].
int ms_until(double deadline, int cap = 100) {
    double ms = (deadline - now_s()) * 1000.0;
    if (ms <= 0) return 0;
    return ms > cap ? cap : static_cast<int>(ms) + 1;
}

// ---------------------------------------------------------------------------------------------
// The echo client behind latency, pingpong, idle and stop: N connections, each with at most one
// message outstanding. It is written to be cheap per message (one shared read buffer, no
// allocation, one recv and one send per round trip) so that the server, not the client, limits
// the rate.

enum class cstate : std::uint8_t { connecting, active, idle, ended };
enum class cend : std::uint8_t { open, eof, reset, failed };

struct econn {
    int fd = -1;
    cstate st = cstate::connecting;
    cend end = cend::open;
    bool setting_up = true;    // counted in echo_client::pending
    std::uint32_t unsent = 0;  // bytes of the current message not yet written
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::int64_t t_send = 0;
};

class echo_client {
  public:
    echo_client(const options& o, bool verify)
        : o_(o), msg_(o.size), verify_(verify), rbuf_(256 * 1024) {}
    ~echo_client() {
        for (auto& c : conns_) {
            if (c.fd >= 0) close(c.fd);
        }
    }
    echo_client(const echo_client&) = delete;
    echo_client& operator=(const echo_client&) = delete;

    // Policy knobs.
    bool keep_pinging = true;   // false: after the first exchange the connection idles
    bool close_on_eof = false;  // stop: EOF → shutdown(write) → close
    std::vector<std::int64_t>* samples = nullptr;  // round-trip times in ns
    std::size_t max_samples = 50'000'000;

    // Counters.
    std::uint64_t messages = 0;  // completed round trips
    std::size_t opened = 0;
    std::size_t pending = 0;      // connecting or waiting for their first echo
    std::size_t established = 0;  // completed at least one round trip
    std::size_t connect_failures = 0;
    std::size_t eofs = 0;
    std::size_t resets = 0;
    std::size_t other_errors = 0;
    std::size_t corrupt = 0;  // echoed bytes differ from what was sent, or more than was sent
    std::size_t open_now = 0;

    [[nodiscard]] std::vector<econn>& conns() { return conns_; }
    [[nodiscard]] poller& ep() { return ep_; }

    // Starts connects until `total` were started, keeping at most `max_pending` connections
    // between connect() and their first echo: a burst of thousands of connects would overflow
    // the server's accept queue and turn into 1 s SYN retransmissions.
    void open_more(std::size_t total, std::size_t max_pending) {
        if (conns_.capacity() < total) conns_.reserve(total);
        while (opened < total && pending < max_pending) {
            int fd = start_connect(o_.addr, nullptr);
            ++opened;
            conns_.emplace_back();
            econn& c = conns_.back();
            if (fd < 0) {
                note_connect_failure(-fd);
                c.setting_up = false;
                c.st = cstate::ended;
                c.end = cend::failed;
                continue;
            }
            c.fd = fd;
            ++pending;
            ++open_now;
            ep_.add(fd, EPOLLOUT | EPOLLIN, conns_.size() - 1);
        }
    }

    // One epoll_wait and the handling of its events. Returns true if the pidfd fired.
    bool poll_once(int timeout_ms) {
        bool pid_exited = false;
        int n = ep_.wait(timeout_ms);
        for (int i = 0; i < n; ++i) {
            const epoll_event& e = ep_.event(i);
            if (e.data.u64 == pidfd_tag) {
                pid_exited = true;
                continue;
            }
            handle(conns_[e.data.u64], e.events);
        }
        return pid_exited;
    }

    std::string first_failure;

  private:
    void note_connect_failure(int err) {
        ++connect_failures;
        if (first_failure.empty()) first_failure = fmt::format("connect: {}", std::strerror(err));
    }

    void finish(econn& c, cend how) {
        if (c.setting_up) {
            c.setting_up = false;
            --pending;
        }
        c.st = cstate::ended;
        c.end = how;
        close(c.fd);  // also removes it from the epoll set
        c.fd = -1;
        --open_now;
    }

    void fail(econn& c, int err) {
        if (is_reset(err)) {
            ++resets;
            finish(c, cend::reset);
        } else {
            ++other_errors;
            if (first_failure.empty())
                first_failure = fmt::format("socket: {}", std::strerror(err));
            finish(c, cend::failed);
        }
    }

    void send_message(econn& c) {
        if (samples) c.t_send = now_ns();
        c.unsent = static_cast<std::uint32_t>(msg_);
        write_some(c);
    }

    // Writes what is left of the current message; arms EPOLLOUT only when the kernel pushed back.
    void write_some(econn& c) {
        ssize_t n = send(c.fd, the_pattern().at(c.sent), c.unsent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                n = 0;
            else
                return fail(c, errno);
        }
        c.sent += static_cast<std::uint64_t>(n);
        c.unsent -= static_cast<std::uint32_t>(n);
        if (c.unsent > 0) ep_.mod(c.fd, EPOLLIN | EPOLLOUT, index(c));
    }

    std::uint64_t index(const econn& c) const {
        return static_cast<std::uint64_t>(&c - conns_.data());
    }

    void handle(econn& c, std::uint32_t ev) {
        if (c.st == cstate::ended) return;
        if (c.st == cstate::connecting) {
            if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int err = socket_error(c.fd);
            if (err != 0) {
                note_connect_failure(err);
                finish(c, cend::failed);
                return;
            }
            set_nodelay(c.fd);
            c.st = cstate::active;
            ep_.mod(c.fd, EPOLLIN, index(c));
            send_message(c);
            return;
        }
        if ((ev & EPOLLOUT) && c.unsent > 0) {
            write_some(c);
            if (c.st == cstate::ended) return;
            if (c.unsent == 0) ep_.mod(c.fd, EPOLLIN, index(c));
        }
        if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
        ssize_t n = recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return fail(c, errno);
        }
        if (n == 0) {
            ++eofs;
            if (close_on_eof) {
                // The server said it is done: stop sending, say we are done too, release.
                shutdown(c.fd, SHUT_WR);
            }
            finish(c, cend::eof);
            return;
        }
        auto got = static_cast<std::uint64_t>(n);
        if (c.received + got > c.sent ||
            (verify_ && !the_pattern().matches(c.received, rbuf_.data(), got))) {
            ++corrupt;
            c.received += got;
            return;
        }
        c.received += got;
        if (c.received != c.sent || c.unsent != 0) return;  // the echo is not complete yet
        ++messages;
        if (samples && samples->size() < max_samples) samples->push_back(now_ns() - c.t_send);
        if (c.setting_up) {
            c.setting_up = false;
            --pending;
            ++established;
        }
        if (keep_pinging) {
            send_message(c);
        } else {
            c.st = cstate::idle;
        }
    }

    const options& o_;
    std::size_t msg_;
    bool verify_;
    std::vector<char> rbuf_;
    poller ep_;
    std::vector<econn> conns_;
};

void put_echo_counters(const echo_client& ec) {
    g_out.integer("connections_opened", static_cast<std::uint64_t>(ec.opened));
    g_out.integer("connections_established", static_cast<std::uint64_t>(ec.established));
    g_out.integer("connect_failures", static_cast<std::uint64_t>(ec.connect_failures));
    g_out.integer("resets", static_cast<std::uint64_t>(ec.resets));
    g_out.integer("eofs", static_cast<std::uint64_t>(ec.eofs));
    g_out.integer("other_errors", static_cast<std::uint64_t>(ec.other_errors));
    g_out.integer("corrupt_echoes", static_cast<std::uint64_t>(ec.corrupt));
}

// Opens `n` connections and waits until each finished its first round trip (or failed).
bool open_all(echo_client& ec, std::size_t n, double hard_deadline) {
    while (ec.opened < n || ec.pending > 0) {
        ec.open_more(n, 256);
        ec.poll_once(ms_until(hard_deadline));
        if (now_s() > hard_deadline) {
            set_error(
                fmt::format("hard cap: only {} of {} connections established", ec.established, n));
            return false;
        }
    }
    if (ec.established < n) {
        set_error(fmt::format("{} of {} connections failed to set up ({})", n - ec.established, n,
                              ec.first_failure));
        return false;
    }
    return true;
}

bool echo_errors(const echo_client& ec) {
    if (ec.resets || ec.eofs || ec.other_errors || ec.corrupt) {
        set_error(fmt::format("echo errors: {} resets, {} EOFs, {} other, {} corrupt ({})",
                              ec.resets, ec.eofs, ec.other_errors, ec.corrupt, ec.first_failure));
        return true;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// W1 latency: one connection, ping-pong, every round trip timed.

void run_latency(const options& o, double hard_deadline) {
    std::vector<std::int64_t> samples;
    samples.reserve(1 << 20);
    echo_client ec(o, true);
    // Timed from the start so that every sample has a real send time; the warm-up's are dropped.
    ec.samples = &samples;
    if (!open_all(ec, 1, hard_deadline)) return put_echo_counters(ec);
    double warm_end = now_s() + o.warmup;
    while (now_s() < warm_end && ec.open_now > 0)
        ec.poll_once(ms_until(warm_end));
    samples.clear();
    double t0 = now_s();
    double end = t0 + o.seconds;
    while (now_s() < end && ec.open_now > 0)
        ec.poll_once(ms_until(end));
    double elapsed = now_s() - t0;
    put_echo_counters(ec);
    echo_errors(ec);
    g_out.num("elapsed_s", elapsed);
    g_out.integer("round_trips", static_cast<std::uint64_t>(samples.size()));
    if (samples.empty()) {
        set_error("no round trip completed");
        return;
    }
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        auto i = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
        return static_cast<double>(samples[i]) / 1000.0;
    };
    double sum = 0;
    for (auto s : samples)
        sum += static_cast<double>(s);
    g_out.num("p50_us", pct(0.50));
    g_out.num("p99_us", pct(0.99));
    g_out.num("p999_us", pct(0.999));
    g_out.num("max_us", static_cast<double>(samples.back()) / 1000.0);
    g_out.num("mean_us", sum / static_cast<double>(samples.size()) / 1000.0);
}

// ---------------------------------------------------------------------------------------------
// W2 pingpong: N connections, one message outstanding each; messages per second and the server's
// CPU time per message over the measured interval.

void run_pingpong(const options& o, double hard_deadline) {
    echo_client ec(o, false);  // no content check: the client must stay cheap
    if (!open_all(ec, o.connections, hard_deadline)) return put_echo_counters(ec);
    double warm_end = now_s() + o.warmup;
    while (now_s() < warm_end && ec.open_now > 0)
        ec.poll_once(ms_until(warm_end));
    auto srv0 = proc_cpu_s(o.server_pid);
    double cli0 = self_cpu_s();
    std::uint64_t m0 = ec.messages;
    double t0 = now_s();
    double end = t0 + o.seconds;
    while (now_s() < end && ec.open_now > 0)
        ec.poll_once(ms_until(end));
    double t1 = now_s();
    std::uint64_t m1 = ec.messages;
    double cli1 = self_cpu_s();
    auto srv1 = proc_cpu_s(o.server_pid);
    put_echo_counters(ec);
    echo_errors(ec);
    double dt = t1 - t0;
    auto msgs = static_cast<double>(m1 - m0);
    g_out.num("elapsed_s", dt);
    g_out.integer("messages", m1 - m0);
    g_out.num("msgs_per_s", msgs / dt);
    g_out.num("mb_per_s", msgs * static_cast<double>(o.size) / dt / 1e6);
    std::optional<double> srv_cpu;
    if (srv0 && srv1) srv_cpu = *srv1 - *srv0;
    g_out.num("server_cpu_s", srv_cpu);
    g_out.num("server_cpu_us_per_msg",
              srv_cpu && msgs > 0 ? std::optional<double>(*srv_cpu / msgs * 1e6) : std::nullopt);
    // Near 1.0 means the client used its whole core: the number is then a bound on the client,
    // not a measurement of the server.
    g_out.num("client_cpu_share", (cli1 - cli0) / dt);
    if (m1 == m0) set_error("no message completed in the measured interval");
}

// ---------------------------------------------------------------------------------------------
// W3 bulk: one connection, write 16 KiB chunks as fast as the kernel takes them while reading the
// echo; every echoed byte is checked against the pattern.

void run_bulk(const options& o, double hard_deadline) {
    int fd = start_connect(o.addr, nullptr);
    if (fd < 0) return set_error(fmt::format("connect: {}", std::strerror(-fd)));
    pollfd p{fd, POLLOUT, 0};
    int err = poll(&p, 1, 5000) == 1 ? socket_error(fd) : ETIMEDOUT;
    if (err != 0) {
        close(fd);
        return set_error(fmt::format("connect: {}", std::strerror(err)));
    }
    set_nodelay(fd);
    poller ep;
    ep.add(fd, EPOLLIN | EPOLLOUT, 0);
    const pattern& pat = the_pattern();
    std::vector<char> rbuf(256 * 1024);
    const std::size_t chunk = o.size;
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t mismatches = 0;
    std::optional<std::uint64_t> first_mismatch;
    bool eof = false;
    double start = now_s();
    double warm_end = start + o.warmup;
    double end = warm_end + o.seconds;
    std::uint64_t r0 = 0;
    double t0 = warm_end;
    bool measuring = false;
    std::optional<double> srv_cpu0;
    while (!eof && g_error.empty()) {
        double t = now_s();
        if (!measuring && t >= warm_end) {
            measuring = true;
            r0 = received;
            t0 = t;
            srv_cpu0 = proc_cpu_s(o.server_pid);
        }
        if (t >= end) break;
        if (t > hard_deadline) {
            set_error("hard cap reached");
            break;
        }
        int n = ep.wait(ms_until(end));
        for (int i = 0; i < n && g_error.empty(); ++i) {
            std::uint32_t ev = ep.event(i).events;
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t r = recv(fd, rbuf.data(), rbuf.size(), 0);
                if (r == 0) {
                    eof = true;
                    set_error("unexpected EOF from the server");
                } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
                    set_error(fmt::format("recv: {}", std::strerror(errno)));
                } else if (r > 0) {
                    auto got = static_cast<std::size_t>(r);
                    if (received + got > sent || !pat.matches(received, rbuf.data(), got)) {
                        ++mismatches;
                        if (!first_mismatch) first_mismatch = received;
                        set_error(fmt::format("echoed bytes differ from the pattern at offset {}",
                                              received));
                    }
                    received += got;
                }
            }
            if (ev & EPOLLOUT) {
                ssize_t w = send(fd, pat.at(sent), chunk, MSG_NOSIGNAL);
                if (w > 0) {
                    sent += static_cast<std::uint64_t>(w);
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    set_error(fmt::format("send: {}", std::strerror(errno)));
                }
            }
        }
    }
    double t1 = now_s();
    auto srv_cpu1 = proc_cpu_s(o.server_pid);
    close(fd);
    double dt = t1 - t0;
    g_out.num("elapsed_s", dt);
    g_out.integer("bytes_sent", sent);
    g_out.integer("bytes_echoed", received);
    g_out.num("gb_per_s", measuring ? static_cast<double>(received - r0) / dt / 1e9 : 0.0);
    g_out.num("server_cpu_s",
              srv_cpu0 && srv_cpu1 ? std::optional<double>(*srv_cpu1 - *srv_cpu0) : std::nullopt);
    g_out.integer("pattern_mismatches", mismatches);
    if (first_mismatch) g_out.integer("first_mismatch_offset", *first_mismatch);
}

// ---------------------------------------------------------------------------------------------
// W4 churn: connect, send 100 B, shutdown(write), read the echo to EOF, close; again and again.

struct churn_slot {
    int fd = -1;
    bool connecting = false;
    bool wrote = false;  // the request went out and shutdown(SHUT_WR) was called
    bool bad = false;    // the reply differed from the request
    std::uint32_t sent = 0;
    std::uint32_t got = 0;
};

void run_churn(const options& o, double hard_deadline) {
    const std::size_t req = o.size;
    const pattern& pat = the_pattern();
    std::vector<churn_slot> slots(o.connections);
    // A client that connects thousands of times a second from one address runs out of ephemeral
    // ports (TIME_WAIT lasts 60 s and stays on our side: we send the first FIN). Rotating over a
    // few loopback source addresses multiplies the 4-tuples; all of 127/8 is local on Linux.
    std::vector<sockaddr_in> sources(o.sources);
    for (std::size_t i = 0; i < sources.size(); ++i) {
        sources[i].sin_family = AF_INET;
        sources[i].sin_addr.s_addr = htonl(0x7f000001u + static_cast<std::uint32_t>(i));
    }
    std::uint64_t started = 0, ok = 0, resets = 0, short_replies = 0, wrong_replies = 0,
                  connect_failures = 0, other_errors = 0;
    std::string first_failure;
    poller ep;
    char rbuf[4096];
    bool stop_starting = false;
    std::size_t active = 0;

    auto end_slot = [&](churn_slot& s) {
        close(s.fd);
        s = churn_slot{};
        --active;
    };
    auto fail = [&](churn_slot& s, int err, bool in_connect) {
        if (is_reset(err)) {
            ++resets;
        } else if (in_connect) {
            ++connect_failures;
        } else {
            ++other_errors;
        }
        if (first_failure.empty()) first_failure = std::strerror(err);
        end_slot(s);
    };
    auto start_slot = [&](std::size_t i) {
        churn_slot& s = slots[i];
        int fd = start_connect(o.addr, &sources[started % sources.size()]);
        ++started;
        if (fd < 0) {
            ++connect_failures;
            if (first_failure.empty()) first_failure = std::strerror(-fd);
            return;
        }
        s.fd = fd;
        s.connecting = true;
        ++active;
        // Edge-triggered: one wake-up when the connect completes, then one per arriving reply
        // chunk; no epoll_ctl MOD per connection.
        ep.add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, i);
    };
    auto write_request = [&](churn_slot& s) {
        while (s.sent < req) {
            ssize_t w = send(s.fd, pat.at(s.sent), req - s.sent, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return true;  // the next EPOLLOUT edge continues
                fail(s, errno, false);
                return false;
            }
            s.sent += static_cast<std::uint32_t>(w);
        }
        if (shutdown(s.fd, SHUT_WR) != 0) {
            fail(s, errno, false);
            return false;
        }
        s.wrote = true;
        return true;
    };
    auto read_reply = [&](churn_slot& s) {
        for (;;) {
            ssize_t r = recv(s.fd, rbuf, sizeof rbuf, 0);
            if (r > 0) {
                auto got = static_cast<std::size_t>(r);
                if (s.got + got > req || !pat.matches(s.got, rbuf, got)) s.bad = true;
                s.got += static_cast<std::uint32_t>(got);
                continue;
            }
            if (r == 0) {
                if (s.bad || s.got > req) {
                    ++wrong_replies;
                } else if (s.got < req) {
                    ++short_replies;
                } else {
                    ++ok;
                }
                end_slot(s);
                return;
            }
            if (errno == EAGAIN) return;
            fail(s, errno, false);
            return;
        }
    };

    auto before = read_tcp_counters();
    double t0 = now_s();
    double end = t0 + o.seconds;
    for (std::size_t i = 0; i < slots.size(); ++i)
        start_slot(i);
    for (;;) {
        double t = now_s();
        if (!stop_starting && (t >= end || (o.count && started >= o.count))) stop_starting = true;
        if (stop_starting && active == 0) break;
        if (t > hard_deadline) {
            set_error(fmt::format("hard cap reached with {} connections still open", active));
            break;
        }
        int n = ep.wait(50);
        for (int k = 0; k < n; ++k) {
            const epoll_event& e = ep.event(k);
            churn_slot& s = slots[e.data.u64];
            if (s.fd < 0) continue;
            if (s.connecting) {
                if (!(e.events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
                int err = socket_error(s.fd);
                if (err != 0) {
                    fail(s, err, true);
                    continue;
                }
                s.connecting = false;
            }
            if (!s.wrote && !write_request(s)) continue;
            if (s.wrote && (e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                read_reply(s);
            }
        }
        if (!stop_starting) {
            for (std::size_t i = 0; i < slots.size(); ++i) {
                if (slots[i].fd < 0 && !(o.count && started >= o.count)) start_slot(i);
            }
        }
    }
    double dt = now_s() - t0;
    for (auto& s : slots) {
        if (s.fd >= 0) close(s.fd);
    }
    auto after = read_tcp_counters();
    g_out.num("elapsed_s", dt);
    g_out.integer("connections_started", started);
    g_out.integer("connections_ok", ok);
    g_out.num("connections_per_s", static_cast<double>(ok) / dt);
    g_out.integer("resets", resets);
    g_out.integer("short_replies", short_replies);
    g_out.integer("wrong_replies", wrong_replies);
    g_out.integer("connect_failures", connect_failures);
    g_out.integer("other_errors", other_errors);
    if (!first_failure.empty()) g_out.str("first_failure", first_failure);
    put_tcp_deltas(before, after);
    if (ok == 0) set_error("no connection completed");
}

// ---------------------------------------------------------------------------------------------
// W5 idle: what N idle connections cost the server in resident memory.

void run_idle(const options& o, double hard_deadline) {
    if (o.server_pid <= 0) return set_error("idle needs --server-pid");
    auto before = proc_rss_kib(o.server_pid);
    echo_client ec(o, true);
    ec.keep_pinging = false;
    bool opened = open_all(ec, o.connections, hard_deadline);
    if (opened) {
        // Let the server settle (lazy frees, deferred work) before reading its RSS; keep polling so
        // a server that closes idle connections is noticed.
        double end = now_s() + o.seconds;
        while (now_s() < end)
            ec.poll_once(ms_until(end));
    }
    auto after = proc_rss_kib(o.server_pid);
    put_echo_counters(ec);
    echo_errors(ec);
    g_out.integer("connections_idle", static_cast<std::uint64_t>(ec.open_now));
    g_out.num("rss_before_kib",
              before ? std::optional<double>(static_cast<double>(*before)) : std::nullopt);
    g_out.num("rss_after_kib",
              after ? std::optional<double>(static_cast<double>(*after)) : std::nullopt);
    if (before && after && o.connections > 0) {
        g_out.num("bytes_per_connection", static_cast<double>(*after - *before) * 1024.0 /
                                              static_cast<double>(o.connections));
    } else {
        g_out.raw("bytes_per_connection", "null");
        set_error("could not read the server's VmRSS");
    }
}

// ---------------------------------------------------------------------------------------------
// W6 stop: SIGTERM the server in the middle of N ping-pongs and see how the connections end.

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

bool process_gone(pid_t pid) {
    // A zombie has exited even though kill(pid, 0) still succeeds: look at the state.
    std::string s = read_file(fmt::format("/proc/{}/stat", pid));
    auto p = s.rfind(')');
    return s.empty() || p == std::string::npos || p + 2 >= s.size() || s[p + 2] == 'Z' ||
           s[p + 2] == 'X';
}

void run_stop(const options& o, double hard_deadline) {
    if (o.server_pid <= 0) return set_error("stop needs --server-pid");
    echo_client ec(o, true);
    ec.close_on_eof = true;
    if (!open_all(ec, o.connections, hard_deadline)) return put_echo_counters(ec);
    double pre_end = now_s() + o.seconds;
    while (now_s() < pre_end && ec.open_now > 0)
        ec.poll_once(ms_until(pre_end));
    std::size_t early_ends = ec.eofs + ec.resets + ec.other_errors;
    int pidfd = open_pidfd(o.server_pid);
    if (pidfd >= 0) ec.ep().add(pidfd, EPOLLIN, pidfd_tag);
    auto before = read_tcp_counters();
    std::uint64_t messages_before = ec.messages;
    double t_term = now_s();
    if (kill(o.server_pid, SIGTERM) != 0) {
        set_error(fmt::format("kill(SIGTERM): {}", std::strerror(errno)));
    }
    std::optional<double> exit_after;
    double give_up = std::min(t_term + o.hang_after, hard_deadline);
    while (now_s() < give_up && (ec.open_now > 0 || !exit_after)) {
        bool fired = ec.poll_once(ms_until(give_up, 20));
        if (!exit_after && (fired || (pidfd < 0 && process_gone(o.server_pid)))) {
            exit_after = now_s() - t_term;
            if (pidfd >= 0) {
                close(pidfd);  // leaves the epoll set; a readable pidfd would spin the loop
                pidfd = -1;
            }
        }
    }
    if (pidfd >= 0) close(pidfd);
    auto after = read_tcp_counters();
    // Lost bytes, per connection that ended (EOF or reset): the connection lost bytes if what it
    // received is not a whole number of messages, or if it received less than it sent minus one
    // message (the one in flight when the server stopped reading may be discarded by its drain).
    // Such a connection counts sent - received as lost.
    const std::uint64_t msg = o.size;
    std::uint64_t lost_bytes = 0, lost_connections = 0, sent = 0, received = 0;
    std::size_t hung = 0, ended_eof = 0, ended_reset = 0, ended_other = 0;
    for (const auto& c : ec.conns()) {
        sent += c.sent;
        received += c.received;
        if (c.end == cend::open) {
            ++hung;
            continue;
        }
        if (c.end == cend::eof) ++ended_eof;
        if (c.end == cend::reset) ++ended_reset;
        if (c.end == cend::failed) ++ended_other;
        bool whole = c.received % msg == 0;
        bool enough = c.received + msg >= c.sent;
        if (!whole || !enough) {
            ++lost_connections;
            lost_bytes += c.sent - std::min(c.sent, c.received);
        }
    }
    put_echo_counters(ec);
    g_out.num("server_exit_s", exit_after);
    g_out.boolean("server_exited", exit_after.has_value());
    g_out.integer("messages_before_sigterm", messages_before);
    g_out.integer("ended_before_sigterm", static_cast<std::uint64_t>(early_ends));
    g_out.integer("ended_eof", static_cast<std::uint64_t>(ended_eof));
    g_out.integer("ended_reset", static_cast<std::uint64_t>(ended_reset));
    g_out.integer("ended_other", static_cast<std::uint64_t>(ended_other));
    g_out.integer("hung", static_cast<std::uint64_t>(hung));
    g_out.integer("lost_connections", lost_connections);
    g_out.integer("lost_bytes", lost_bytes);
    g_out.integer("bytes_sent", sent);
    g_out.integer("bytes_received", received);
    g_out.str("lost_definition",
              "per ended connection: lost if received is not a whole number of messages or "
              "received < sent - one message; such a connection counts sent - received");
    put_tcp_deltas(before, after);
    if (early_ends) set_error(fmt::format("{} connections ended before SIGTERM", early_ends));
    if (ec.corrupt) set_error(fmt::format("{} corrupt echoes", ec.corrupt));
}

}  // namespace

int main(int argc, char** argv) {
    options o = parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);  // belt and braces: every send already uses MSG_NOSIGNAL

    // Thousands of connections need thousands of descriptors.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);

    g_out.str("workload", o.workload);
    g_out.str("target", o.target);
    g_out.integer("connections", static_cast<std::uint64_t>(o.connections));
    g_out.integer("size", static_cast<std::uint64_t>(o.size));
    g_out.num("seconds", o.seconds);
    if (o.connections + 16 > rl.rlim_cur) {
        set_error(fmt::format("RLIMIT_NOFILE is {}, too low for {} connections",
                              static_cast<std::uint64_t>(rl.rlim_cur), o.connections));
    }

    // Hard cap: the workload's own time, plus 15 s, plus time to set up many connections.
    double extra = o.workload == "stop" ? o.hang_after : 0.0;
    double cap = o.seconds + o.warmup + extra + 15.0 + static_cast<double>(o.connections) / 1000.0;
    double hard_deadline = now_s() + cap;
    std::string wd = fmt::format(
        "{{\"workload\": \"{}\", \"error\": \"watchdog: still running after {:.0f} s\", \"ok\": "
        "false}}\n",
        o.workload, cap + 5);
    g_watchdog_len = std::min(wd.size(), sizeof g_watchdog_json);
    std::memcpy(g_watchdog_json, wd.data(), g_watchdog_len);
    signal(SIGALRM, on_watchdog);
    alarm(static_cast<unsigned>(cap + 5));

    double t_start = now_s();
    if (g_error.empty()) {
        if (o.workload == "latency") run_latency(o, hard_deadline);
        if (o.workload == "pingpong") run_pingpong(o, hard_deadline);
        if (o.workload == "bulk") run_bulk(o, hard_deadline);
        if (o.workload == "churn") run_churn(o, hard_deadline);
        if (o.workload == "idle") run_idle(o, hard_deadline);
        if (o.workload == "stop") run_stop(o, hard_deadline);
    }
    alarm(0);
    g_out.num("wall_s", now_s() - t_start);
    g_out.boolean("ok", g_error.empty());
    if (!g_error.empty()) g_out.str("error", g_error);
    std::string text = g_out.dump();
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return g_error.empty() ? 0 : 1;
}
