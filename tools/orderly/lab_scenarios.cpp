// The lab's experiments. Each is a short story told with real sockets on 127.0.0.1: the calls are
// the ones an application would make, the states and segments are whatever the kernel did.

#include <fmt/core.h>

#include <filesystem>
#include <thread>

#include "lab.hpp"
#include "lab_doctor.hpp"

namespace orderly::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t request_size = 3000;
constexpr std::size_t request_read = 1000;
constexpr std::size_t reply_size = std::size_t{256} * 1024;

std::string error_text(const std::error_code& ec) {
    if (ec == make_error_code(errc::peer_reset)) return "error: reset by peer (ECONNRESET/EPIPE)";
    if (ec == make_error_code(errc::timed_out)) return "error: timed out";
    return "error: " + ec.message();
}

std::string describe(const result<std::size_t>& r) {
    if (!r) return error_text(r.error());
    return *r == 0 ? "0: end-of-stream" : fmt::format("{} B", *r);
}

std::string describe(const result<void>& r) {
    return r ? "ok" : error_text(r.error());
}

std::string describe(const transfer_result& r) {
    if (r.has_value()) return fmt::format("{} B", r.bytes);
    return fmt::format("{} B, then {}", r.bytes, error_text(r.error()));
}

std::string describe(const close_report& r) {
    std::string s = std::string(to_string(r.outcome));
    if (r.unread_bytes > 0) s += fmt::format(", {} B unread", r.unread_bytes);
    if (r.unacked_bytes > 0) s += fmt::format(", {} B unacked", r.unacked_bytes);
    if (r.bytes_drained > 0) s += fmt::format(", drained {} B", r.bytes_drained);
    return s;
}

std::int64_t as_bytes(const result<std::size_t>& r) {
    return r ? static_cast<std::int64_t>(*r) : -1;
}

std::size_t open_descriptors() {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++n;
    }
    return n;
}

// A connected client/server pair registered with the recorder.
struct lab_pair {
    stream_socket client;
    stream_socket server;
    std::size_t conn = 0;
    std::string client_side = "client";
    std::string server_side = "server";
};

lab_pair open_pair(lab_recorder& rec, listener& l, const std::string& suffix = {}) {
    lab_pair p;
    p.client_side += suffix;
    p.server_side += suffix;
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

// The close calls drop the descriptor from the recorder first: after them the state comes from
// the kernel's connection table, which still knows sockets without descriptors.
close_report record_close(lab_recorder& rec, lab_pair& p, bool client, const char* how) {
    stream_socket& s = client ? p.client : p.server;
    if (client) {
        rec.set_client_fd(p.conn, -1);
    } else {
        rec.set_server_fd(p.conn, -1);
    }
    const double t = rec.now_ms();
    close_report r;
    const std::string_view what(how);
    if (what == "abort") {
        r = s.abort();
    } else if (what == "close_gracefully") {
        r = s.close_gracefully();
    } else {
        r = s.close();
    }
    std::string text = describe(r);
    // Rows are placed at the time a call started; a call that blocked says for how long.
    const double took = rec.now_ms() - t;
    if (took >= 5.0) text += fmt::format(" (returned after {:.0f} ms)", took);
    rec.call(t, client ? p.client_side : p.server_side, p.conn, std::string(how) + "()", text);
    return r;
}

// Lets the kernel finish what a call started (ACKs, a RST answering data) before the next step
// looks at the states.
void settle() {
    std::this_thread::sleep_for(20ms);
}

// The server reads part of a request, replies, and ends with close_gracefully() (orderly_end) or
// with a plain close(); the client reads the reply a moment later.
lab_outcome reply_story(lab_recorder& rec, listener& l, bool orderly_end) {
    auto p = open_pair(rec, l);
    // A small receive buffer keeps most of the reply in the server's send queue while the client
    // is busy, as it would be on a slow network.
    const int small = 64 * 1024;
    (void)set_recv_buffer_size(p.client.native_handle(), small);
    rec.note(fmt::format(
        "client SO_RCVBUF {} B: most of the reply waits in the server's send queue", small));

    const std::string request(request_size, 'q');
    double t = rec.now_ms();
    auto sent = p.client.send_all(request, deadline::after(2s));
    rec.call(t, "client", p.conn, fmt::format("send_all(request {} B)", request_size),
             describe(sent), static_cast<std::int64_t>(sent.bytes));
    settle();

    std::string got;
    transfer_result client_read;
    std::thread client([&] {
        // The client looks at the answer a moment later, as a real one busy elsewhere would.
        std::this_thread::sleep_for(50ms);
        const double t0 = rec.now_ms();
        client_read = p.client.read_to_end(got, deadline::after(5s));
        rec.call(t0, "client", p.conn, "read_to_end()",
                 client_read.has_value()
                     ? fmt::format("{} B, then end-of-stream", client_read.bytes)
                     : describe(client_read),
                 static_cast<std::int64_t>(client_read.bytes));
        if (orderly_end) record_close(rec, p, true, "close");
    });

    std::vector<char> part(request_read);
    t = rec.now_ms();
    std::size_t have = 0;
    while (have < request_read) {
        auto n = p.server.recv(std::span<char>(part.data() + have, request_read - have),
                               deadline::after(2s));
        if (!n || *n == 0) break;
        have += *n;
    }
    rec.call(t, "server", p.conn, fmt::format("recv({}): reads only the header", request_read),
             fmt::format("{} B; {} B stay unread", have, request_size - have),
             static_cast<std::int64_t>(have));

    const std::string reply(reply_size, 'r');
    t = rec.now_ms();
    auto replied = p.server.send_all(reply, deadline::after(5s));
    rec.call(t, "server", p.conn, fmt::format("send_all(reply {} B)", reply_size),
             describe(replied), static_cast<std::int64_t>(replied.bytes));

    const close_report r = record_close(rec, p, false, orderly_end ? "close_gracefully" : "close");
    client.join();
    if (!orderly_end) record_close(rec, p, true, "close");
    settle();

    lab_outcome o;
    if (orderly_end) {
        o.showed_lesson = client_read.has_value() && got.size() == reply_size && r.orderly();
        o.verdict = fmt::format(
            "client received {} of {} B and then end-of-stream; the server's close_gracefully() "
            "drained {} unread request bytes and ended {}: FIN both ways, nothing lost",
            got.size(), reply_size, r.bytes_drained, to_string(r.outcome));
    } else {
        const bool lost = got.size() < reply_size;
        o.showed_lesson = lost && !client_read.has_value();
        o.verdict = fmt::format(
            "client received {} of {} B and then {}: close() with {} unread request bytes made "
            "Linux send RST, which threw away {} B of reply that send_all() had already accepted",
            got.size(), reply_size,
            client_read.has_value() ? "end-of-stream" : error_text(client_read.error()),
            r.unread_bytes, reply_size - got.size());
    }
    return o;
}

lab_outcome half_close(lab_recorder& rec, listener& l) {
    auto p = open_pair(rec, l);
    double t = rec.now_ms();
    auto sent = p.client.send("GET /time\n");
    rec.call(t, "client", p.conn, "send(\"GET /time\\n\")", describe(sent), as_bytes(sent));
    t = rec.now_ms();
    auto shut_w = p.client.shutdown(shut::write);
    rec.call(t, "client", p.conn, "shutdown(write)",
             describe(shut_w) + ": FIN, reading still works");
    settle();

    char buf[256];
    t = rec.now_ms();
    auto r1 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(256)", describe(r1), as_bytes(r1));
    t = rec.now_ms();
    auto r2 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(256)",
             describe(r2) + (r2 && *r2 == 0 ? " (peer EOF: half-closed, not over)" : ""),
             as_bytes(r2));
    const std::string reply = "12:00:00, sent after your EOF\n";
    t = rec.now_ms();
    auto replied = p.server.send_all(reply, deadline::after(1s));
    rec.call(t, "server", p.conn, fmt::format("send_all({} B)", reply.size()), describe(replied),
             static_cast<std::int64_t>(replied.bytes));
    const close_report sr = record_close(rec, p, false, "close_gracefully");
    settle();

    std::string got;
    t = rec.now_ms();
    auto rd = p.client.read_to_end(got, deadline::after(1s));
    rec.call(t, "client", p.conn, "read_to_end()",
             rd.has_value() ? fmt::format("{} B, then end-of-stream", rd.bytes) : describe(rd),
             static_cast<std::int64_t>(rd.bytes));
    const close_report cr = record_close(rec, p, true, "close");
    settle();

    lab_outcome o;
    o.showed_lesson = rd.has_value() && got == reply && sr.orderly();
    o.verdict = fmt::format(
        "the client half-closed after its request and still received the whole {} B reply; a "
        "server that took the peer's EOF for the end of the connection would have sent nothing "
        "(server {}, client {})",
        reply.size(), to_string(sr.outcome), to_string(cr.outcome));
    return o;
}

lab_outcome shut_rd(lab_recorder& rec, listener& l) {
    auto p = open_pair(rec, l);
    double t = rec.now_ms();
    auto s1 = p.client.send("first");
    rec.call(t, "client", p.conn, "send(\"first\")", describe(s1), as_bytes(s1));
    settle();
    char buf[64];
    t = rec.now_ms();
    auto r1 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(64)", describe(r1), as_bytes(r1));
    t = rec.now_ms();
    auto sh = p.server.shutdown(shut::read);
    rec.call(t, "server", p.conn, "shutdown(read)", describe(sh) + ": nothing is sent to the peer");
    settle();
    t = rec.now_ms();
    auto s2 = p.client.send("second");
    rec.call(t, "client", p.conn, "send(\"second\")", describe(s2) + ": accepted and acked",
             as_bytes(s2));
    settle();
    t = rec.now_ms();
    auto r2 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    std::uint32_t queued = 0;
    if (auto info = read_tcp_info(p.server.native_handle())) queued = info->recv_queue_bytes;
    rec.call(t, "server", p.conn, "recv(64)",
             describe(r2) + fmt::format("; yet {} B sit in the receive queue", queued),
             as_bytes(r2));
    const close_report sr = record_close(rec, p, false, "close");
    settle();
    t = rec.now_ms();
    auto r3 = p.client.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "client", p.conn, "recv(64)", describe(r3), as_bytes(r3));
    record_close(rec, p, true, "close");

    lab_outcome o;
    o.showed_lesson =
        s2 && r2 && *r2 == 0 && queued > 0 && sr.outcome == close_outcome::unread_data_discarded;
    o.verdict = fmt::format(
        "shutdown(read) told the peer nothing: its later bytes were still accepted ({} B queued) "
        "while recv() said end-of-stream, and close() with them unread ended {} (RST); the client "
        "saw: {}",
        queued, to_string(sr.outcome), describe(r3));
    return o;
}

lab_outcome shut_rdwr(lab_recorder& rec, listener& l) {
    auto p = open_pair(rec, l);
    double t = rec.now_ms();
    auto sh = p.server.shutdown(shut::both);
    rec.call(t, "server", p.conn, "shutdown(both)", describe(sh) + ": FIN");
    settle();
    char buf[64];
    t = rec.now_ms();
    auto r1 = p.client.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "client", p.conn, "recv(64)", describe(r1), as_bytes(r1));
    t = rec.now_ms();
    auto s1 = p.client.send("late request");
    rec.call(t, "client", p.conn, "send(\"late request\")", describe(s1), as_bytes(s1));
    settle();
    t = rec.now_ms();
    auto s2 = p.client.send("more");
    rec.call(t, "client", p.conn, "send(\"more\")", describe(s2), as_bytes(s2));
    settle();
    t = rec.now_ms();
    auto r2 = p.server.recv(std::span<char>(buf), deadline::after(200ms));
    rec.call(t, "server", p.conn, "recv(64)", describe(r2), as_bytes(r2));
    const close_report sr = record_close(rec, p, false, "close");
    const close_report cr = record_close(rec, p, true, "close");
    settle();

    lab_outcome o;
    const bool client_hit_reset = !s2 && s2.error() == make_error_code(errc::peer_reset);
    o.showed_lesson = sh && r1 && *r1 == 0 && client_hit_reset;
    o.verdict = fmt::format(
        "after shutdown(both) the server's kernel answered the client's late bytes with RST: the "
        "first send() looked fine ({}), the next one failed ({}); use shutdown(write) and keep "
        "reading instead (server close: {}, client close: {})",
        describe(s1), describe(s2), to_string(sr.outcome), to_string(cr.outcome));
    return o;
}

lab_outcome close_wait_leak(lab_recorder& rec, listener& l) {
    constexpr int connections = 5;
    std::vector<lab_pair> pairs;
    const std::size_t fds_before = open_descriptors();
    rec.note(fmt::format("{} descriptors open before", fds_before));
    for (int i = 0; i < connections; ++i) {
        pairs.push_back(open_pair(rec, l, fmt::format("#{}", i + 1)));
        auto& p = pairs.back();
        record_close(rec, p, true, "close");
        settle();
        // The buggy server: it sees EOF and forgets to close.
        char buf[16];
        const double t = rec.now_ms();
        auto r = p.server.recv(std::span<char>(buf), deadline::after(1s));
        rec.call(t, p.server_side, p.conn, "recv(16), then forgets close()",
                 describe(r) + fmt::format("; {} descriptors open", open_descriptors()),
                 as_bytes(r));
    }
    std::size_t in_close_wait = 0;
    for (const auto& p : pairs) {
        if (auto info = read_tcp_info(p.server.native_handle());
            info && info->state == tcp_state::close_wait) {
            ++in_close_wait;
        }
    }
    const std::size_t fds_leaked = open_descriptors() - fds_before;
    rec.note(
        fmt::format("{} server sockets sit in CLOSE_WAIT holding {} descriptors; the clients' "
                    "side waits in FIN_WAIT2",
                    in_close_wait, fds_leaked));
    std::vector<int> server_fds;
    for (const auto& p : pairs)
        server_fds.push_back(p.server.native_handle());
    const auto found = doctor_close_wait_check(server_fds);
    for (const auto& line : found.lines)
        rec.note(line);
    rec.note("the fix: close() after the peer's EOF");
    for (auto& p : pairs)
        record_close(rec, p, false, "close");
    settle();
    const std::size_t fds_after = open_descriptors();
    rec.note(fmt::format("{} descriptors open after the fix", fds_after));
    const auto after = doctor_close_wait_check(server_fds);
    for (const auto& line : after.lines)
        rec.note(line);

    lab_outcome o;
    o.showed_lesson = in_close_wait == connections && fds_leaked >= connections &&
                      found.named == connections && after.named == 0;
    o.verdict = fmt::format(
        "{} connections whose server forgot close() after the peer's FIN sat in CLOSE_WAIT and "
        "held {} descriptors; a long-running server leaks until accept() fails with EMFILE. "
        "orderly doctor's check named {} of their {} descriptors, and none after the fix",
        in_close_wait, fds_leaked, found.named, connections);
    return o;
}

lab_outcome time_wait(lab_recorder& rec, listener& l) {
    auto p = open_pair(rec, l);
    double t = rec.now_ms();
    auto s1 = p.client.send("bye");
    rec.call(t, "client", p.conn, "send(\"bye\")", describe(s1), as_bytes(s1));
    settle();
    char buf[16];
    t = rec.now_ms();
    auto r1 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(16)", describe(r1), as_bytes(r1));
    record_close(rec, p, true, "close");
    settle();
    t = rec.now_ms();
    auto r2 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(16)", describe(r2), as_bytes(r2));
    record_close(rec, p, false, "close");
    settle();
    const auto conns = rec.connections();
    const std::string client_state = proc_tcp_state(conns[0].client_port, conns[0].server_port);
    const std::string server_state = proc_tcp_state(conns[0].server_port, conns[0].client_port);
    rec.call(rec.now_ms(), "client", p.conn, "(no descriptor left)",
             fmt::format("kernel still holds the client's socket: {}", client_state));

    lab_outcome o;
    o.showed_lesson = client_state == "TIME_WAIT" && server_state == "CLOSED";
    o.verdict = fmt::format(
        "the client closed first, so its side of the connection stays in {} (2*MSL, 60 s on "
        "Linux) while the server's is {}; a side that closes first keeps its port pair busy",
        client_state, server_state);
    return o;
}

lab_outcome abort_rst(lab_recorder& rec, listener& l) {
    auto p = open_pair(rec, l);
    double t = rec.now_ms();
    auto s1 = p.client.send("half a request");
    rec.call(t, "client", p.conn, "send(\"half a request\")", describe(s1), as_bytes(s1));
    settle();
    const close_report cr = record_close(rec, p, true, "abort");
    settle();
    char buf[64];
    t = rec.now_ms();
    auto r1 = p.server.recv(std::span<char>(buf), deadline::after(1s));
    rec.call(t, "server", p.conn, "recv(64)", describe(r1), as_bytes(r1));
    result<std::size_t> r2 = std::size_t{0};
    if (r1 && *r1 > 0) {
        t = rec.now_ms();
        r2 = p.server.recv(std::span<char>(buf), deadline::after(1s));
        rec.call(t, "server", p.conn, "recv(64)", describe(r2), as_bytes(r2));
    }
    t = rec.now_ms();
    auto s2 = p.server.send("too late");
    rec.call(t, "server", p.conn, "send(\"too late\")", describe(s2), as_bytes(s2));
    const close_report sr = record_close(rec, p, false, "close");

    lab_outcome o;
    const auto reset = make_error_code(errc::peer_reset);
    o.showed_lesson = cr.outcome == close_outcome::aborted &&
                      ((!r1 && r1.error() == reset) || (!r2 && r2.error() == reset));
    o.verdict = fmt::format(
        "abort() (SO_LINGER 0) sent RST instead of FIN: the server read what had arrived, then got "
        "a reset instead of end-of-stream, and no TIME_WAIT was left anywhere (server close: {})",
        to_string(sr.outcome));
    return o;
}

}  // namespace

const std::vector<lab_scenario>& lab_scenarios() {
    static const std::vector<lab_scenario> all = {
        {"naive-close-loses-data", "close() with unread request bytes: RST, and the reply is cut",
         "The server reads only part of the request, sends a 256 KiB reply and calls close(). The "
         "unread bytes make Linux send RST instead of FIN; the reply still queued is thrown away "
         "and the client reads a short reply followed by ECONNRESET.",
         [](lab_recorder& r, listener& l) { return reply_story(r, l, false); }},
        {"orderly-close", "the same server ending with close_gracefully(): every byte arrives",
         "Same request and reply, but the server ends with shutdown(write), reads and discards "
         "until the client's EOF, then closes: FIN both ways and the whole reply delivered.",
         [](lab_recorder& r, listener& l) { return reply_story(r, l, true); }},
        {"half-close", "the client sends FIN after its request and still gets the reply",
         "shutdown(write) after the request tells the server 'that is all'; the server sees EOF, "
         "which means half-closed, not over, and still sends its reply.",
         half_close},
        {"shut-rd", "shutdown(read) sends nothing; the peer's bytes still arrive",
         "After shutdown(read) recv() says end-of-stream, but Linux tells the peer nothing and "
         "keeps accepting its data; closing with that data unread then sends RST.",
         shut_rd},
        {"shut-rdwr", "shutdown(both): FIN, then RST for any late bytes from the peer",
         "shutdown(both) sends FIN like shutdown(write), but data arriving afterwards is answered "
         "with RST, so a peer still sending loses the connection.",
         shut_rdwr},
        {"close-wait-leak", "a server that forgets close() after the peer's FIN leaks descriptors",
         "Each client closes; the server sees EOF and never calls close(). Its sockets sit in "
         "CLOSE_WAIT, each holding a descriptor, until the process runs out of them; orderly "
         "doctor's check, run on the lab itself, names them.",
         close_wait_leak},
        {"time-wait", "the side that closes first holds TIME_WAIT",
         "The client closes first: it goes FIN_WAIT1, FIN_WAIT2, then TIME_WAIT for 60 s after the "
         "server's FIN, while the server passes through CLOSE_WAIT and LAST_ACK to CLOSED.",
         time_wait},
        {"abort-rst", "abort(): SO_LINGER 0 sends RST, the peer gets ECONNRESET",
         "abort() discards what is queued and sends RST: the peer's recv() reports a reset instead "
         "of end-of-stream and nobody keeps TIME_WAIT. For errors and timeouts only.",
         abort_rst},
    };
    return all;
}

}  // namespace orderly::cli
