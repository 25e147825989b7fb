#pragma once
// What the lab's scenarios share: how a call's result reads in a timeline row, the client/server
// pair every story starts with, and the close calls.

#include <fmt/core.h>

#include <chrono>
#include <string>
#include <thread>

#include "lab.hpp"

namespace orderly::cli {

inline std::string error_text(const std::error_code& ec) {
    if (ec == make_error_code(errc::peer_reset)) return "error: reset by peer (ECONNRESET/EPIPE)";
    if (ec == make_error_code(errc::timed_out)) return "error: timed out";
    return "error: " + ec.message();
}

inline std::string describe(const result<std::size_t>& r) {
    if (!r) return error_text(r.error());
    return *r == 0 ? "0: end-of-stream" : fmt::format("{} B", *r);
}

inline std::string describe(const result<void>& r) {
    return r ? "ok" : error_text(r.error());
}

inline std::string describe(const transfer_result& r) {
    if (r.has_value()) return fmt::format("{} B", r.bytes);
    return fmt::format("{} B, then {}", r.bytes, error_text(r.error()));
}

inline std::string describe(const close_report& r) {
    std::string s = std::string(to_string(r.outcome));
    if (r.unread_bytes > 0) s += fmt::format(", {} B unread", r.unread_bytes);
    if (r.unacked_bytes > 0) s += fmt::format(", {} B unacked", r.unacked_bytes);
    if (r.bytes_drained > 0) s += fmt::format(", drained {} B", r.bytes_drained);
    return s;
}

// The bytes a call moved, for the row's `bytes` column (-1: not applicable).
inline std::int64_t bytes_of(const result<std::size_t>& r) {
    return r ? static_cast<std::int64_t>(*r) : -1;
}
inline std::int64_t bytes_of(const transfer_result& r) {
    return static_cast<std::int64_t>(r.bytes);
}
inline std::int64_t bytes_of(const result<void>&) {
    return -1;
}
inline std::int64_t bytes_of(const close_report&) {
    return -1;
}

// The usual row for a step: the result as describe() has it, then `remark` ("say{}" or
// "say{": FIN, reading still works"}").
struct say {
    std::string remark;
    template <class R>
    lab_said operator()(const R& r) const {
        return {describe(r) + remark, bytes_of(r)};
    }
};

// read_to_end's row: "30 B, then end-of-stream", or the error after the bytes.
inline lab_said said_read_to_end(const transfer_result& r) {
    return {r.has_value() ? fmt::format("{} B, then end-of-stream", r.bytes) : describe(r),
            bytes_of(r)};
}

// Lets the kernel finish what a call started (ACKs, a RST answering data) before the next step
// looks at the states.
inline void settle() {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// A connected client/server pair registered with the recorder.
struct lab_pair {
    stream_socket client;
    stream_socket server;
    std::size_t conn = 0;
    std::string client_side = "client";
    std::string server_side = "server";
};

inline lab_pair open_pair(lab_recorder& rec, listener& l, const std::string& suffix = {}) {
    using namespace std::chrono_literals;
    lab_pair p;
    p.client_side += suffix;
    p.server_side += suffix;
    // The connect row ends where accept() starts; both are recorded once the pair is registered.
    const double t_connect = rec.now_ms();
    p.client = stream_socket::connect(l.local_endpoint(), 2s).value();
    const double t_accept = rec.now_ms();
    p.server = l.accept(deadline::after(2s)).value();
    lab_connection c;
    c.client_port = p.client.local_endpoint().value().port();
    c.server_port = l.local_endpoint().port();
    c.client_fd = p.client.native_handle();
    c.server_fd = p.server.native_handle();
    p.conn = rec.add_connection(c);
    rec.call(t_connect, p.client_side, p.conn,
             fmt::format("connect({})", l.local_endpoint().to_string()),
             fmt::format("ok, local port {}", c.client_port), -1, t_accept);
    rec.call(t_accept, p.server_side, p.conn, "accept()",
             fmt::format("ok, peer port {}", c.client_port));
    return p;
}

// A close call as a step. It drops the descriptor from the recorder first: after it the state
// comes from the kernel's connection table, which still knows sockets without descriptors. Rows
// are placed at the time a call started; a close that blocked says for how long.
template <class Close>
close_report close_step(lab_recorder& rec, std::size_t conn, bool client, std::string side,
                        std::string call_text, Close&& do_close, std::string remark = {}) {
    if (client) {
        rec.set_client_fd(conn, -1);
    } else {
        rec.set_server_fd(conn, -1);
    }
    double t = 0;
    return rec.step(
        std::move(side), conn, std::move(call_text),
        [&] {
            t = rec.now_ms();
            return std::forward<Close>(do_close)();
        },
        [&](const close_report& r) {
            std::string text = describe(r) + remark;
            const double took = rec.now_ms() - t;
            if (took >= 5.0) text += fmt::format(" (returned after {:.0f} ms)", took);
            return lab_said{text};
        });
}

// `how`: "close", "close_gracefully" or "abort".
inline close_report record_close(lab_recorder& rec, lab_pair& p, bool client, const char* how) {
    stream_socket& s = client ? p.client : p.server;
    const std::string_view what(how);
    return close_step(rec, p.conn, client, client ? p.client_side : p.server_side,
                      std::string(how) + "()", [&] {
                          if (what == "abort") return s.abort();
                          if (what == "close_gracefully") return s.close_gracefully();
                          return s.close();
                      });
}

}  // namespace orderly::cli
