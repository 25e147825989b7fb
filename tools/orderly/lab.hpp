#pragma once
// The lab: short live experiments on loopback that show how TCP connections end. Each scenario
// drives a real client and server socket and records a timeline of calls (with the TCP state of
// both sockets after each call) and, when capture is possible, the segments seen on `lo`.

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orderly/orderly.hpp"

namespace orderly::cli {

struct lab_event {
    enum class kind { call, segment, note };
    kind what = kind::call;
    double t_ms = 0;           // since the scenario started
    std::string side;          // "client", "server", "client#2", ...; for segments the sender
    std::string call;          // "recv(4096)"; for segments "client -> server"
    std::string result;        // "12 B", "EOF", "ECONNRESET"; for segments "FIN,ACK len 0"
    std::string client_state;  // TCP state of the client socket after the call
    std::string server_state;
    std::int64_t bytes = -1;  // bytes moved by the call, -1 when not applicable
    double t_end_ms = -1;     // calls: when the call returned (the states are those at return)
    // Segments only.
    std::string flags;         // "SYN", "FIN,ACK", "RST", "ACK" (data runs: "data")
    std::uint64_t length = 0;  // payload bytes (sum for a run of data segments)
    std::uint32_t count = 1;   // segments in this row (runs of data/ACK segments are merged)
    bool to_server = true;
    std::uint32_t seq = 0;            // sequence number (one captured segment)
    bool retransmission = false;      // repeats sequence space its sender had already sent
    std::uint64_t retransmitted = 0;  // payload bytes of this row that were sent before
    std::uint32_t acks = 0;           // pure ACKs in this row (runs)
    std::string record;  // TLS: which record(s) it carried, as the library side knows them
};

// TLS records as the library side wrote them: a step's TCP bytes (`offset` and `length` in its
// sender's byte stream), so that the captured segment carrying them says what they were (TLS
// 1.3 encrypts alerts: on the wire a close_notify is just 24 B of application data).
struct lab_tls_record {
    std::size_t conn = 0;
    bool from_client = true;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string what;  // "close_notify alert"
};

// One connection of a scenario: its ports, and its descriptors while they are open (TCP_INFO is
// read through them; once a socket is closed its state comes from /proc/net/tcp).
struct lab_connection {
    std::uint16_t client_port = 0;
    std::uint16_t server_port = 0;
    int client_fd = -1;
    int server_fd = -1;
};

// What a timeline row says about a call that returned: its result and the bytes it moved.
struct lab_said {
    std::string result;
    std::int64_t bytes = -1;
};

class lab_recorder {
  public:
    lab_recorder();

    [[nodiscard]] double now_ms() const;
    [[nodiscard]] std::int64_t realtime_start_ns() const noexcept { return realtime_start_ns_; }

    // Registers a connection; returns its index (0 for the first). Thread-safe.
    std::size_t add_connection(const lab_connection& c);
    void set_client_fd(std::size_t conn, int fd);
    void set_server_fd(std::size_t conn, int fd);

    // Records a call that started at `t_ms` on `side` of connection `conn`, with the states of
    // both of its sockets as they are now.
    // `t_end_ms`: when the call returned, if not just now.
    void call(double t_ms, std::string side, std::size_t conn, std::string call, std::string result,
              std::int64_t bytes = -1, double t_end_ms = -1);
    // One step of a story: takes the time, makes the call (`make_call()`), records it on `side`
    // of connection `conn` with what `say(result)` says about it (a lab_said), and hands the
    // call's result back.
    template <class Call, class Say>
    auto step(std::string side, std::size_t conn, std::string call_text, Call&& make_call,
              Say&& say) {
        const double t = now_ms();
        auto r = std::forward<Call>(make_call)();
        lab_said said = std::forward<Say>(say)(std::as_const(r));
        call(t, std::move(side), conn, std::move(call_text), std::move(said.result), said.bytes);
        return r;
    }
    void note(std::string text);
    void add_segment(lab_event e);
    void tls_record(lab_tls_record r);

    [[nodiscard]] std::vector<lab_event> events() const;
    [[nodiscard]] std::vector<lab_connection> connections() const;
    [[nodiscard]] std::vector<lab_tls_record> tls_records() const;

  private:
    std::string state_of(int fd, std::uint16_t local_port, std::uint16_t remote_port) const;

    mutable std::mutex mu_;
    clock::time_point start_;
    std::int64_t realtime_start_ns_ = 0;
    std::vector<lab_event> events_;
    std::vector<lab_connection> conns_;
    std::vector<lab_tls_record> records_;
};

// What a scenario hands back besides its timeline.
struct lab_outcome {
    bool showed_lesson = false;  // the experiment behaved as the story says
    std::string verdict;         // one or two sentences on what happened
};

struct lab_scenario {
    std::string_view name;
    std::string_view title;   // one line
    std::string_view lesson;  // a short paragraph for --list and the docs
    std::function<lab_outcome(lab_recorder&, listener&)> run;
};

const std::vector<lab_scenario>& lab_scenarios();
// The TLS scenarios (lab_tls.cpp), listed after the TCP ones.
std::vector<lab_scenario> lab_tls_scenarios();

// The TCP state of the socket with these local and remote ports on 127.0.0.1/::1 from
// /proc/net/tcp{,6}; "CLOSED" when there is none (the kernel forgot it).
std::string proc_tcp_state(std::uint16_t local_port, std::uint16_t remote_port);

}  // namespace orderly::cli
