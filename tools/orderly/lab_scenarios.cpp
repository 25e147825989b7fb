// The lab's experiments. Each is a short story told with real sockets on 127.0.0.1: the calls are
// the ones an application would make, the states and segments are whatever the kernel did.

#include <fmt/core.h>

#include <filesystem>
#include <thread>

#include "lab.hpp"
#include "lab_doctor.hpp"
#include "lab_story.hpp"

namespace orderly::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t request_size = 3000;
constexpr std::size_t request_read = 1000;
constexpr std::size_t reply_size = std::size_t{256} * 1024;

std::size_t open_descriptors() {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++n;
    }
    return n;
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
    (void)rec.step(
        "client", p.conn, fmt::format("send_all(request {} B)", request_size),
        [&] { return p.client.send_all(request, deadline::after(2s)); }, say{});
    settle();

    std::string got;
    transfer_result client_read;
    std::thread client([&] {
        // The client looks at the answer a moment later, as a real one busy elsewhere would.
        std::this_thread::sleep_for(50ms);
        client_read = rec.step(
            "client", p.conn, "read_to_end()",
            [&] { return p.client.read_to_end(got, deadline::after(5s)); }, said_read_to_end);
        if (orderly_end) record_close(rec, p, true, "close");
    });

    std::vector<char> part(request_read);
    (void)rec.step(
        "server", p.conn, fmt::format("recv({}): reads only the header", request_read),
        [&] {
            std::size_t have = 0;
            while (have < request_read) {
                auto n = p.server.recv(std::span<char>(part.data() + have, request_read - have),
                                       deadline::after(2s));
                if (!n || *n == 0) break;
                have += *n;
            }
            return have;
        },
        [](std::size_t have) {
            return lab_said{fmt::format("{} B; {} B stay unread", have, request_size - have),
                            static_cast<std::int64_t>(have)};
        });

    const std::string reply(reply_size, 'r');
    (void)rec.step(
        "server", p.conn, fmt::format("send_all(reply {} B)", reply_size),
        [&] { return p.server.send_all(reply, deadline::after(5s)); }, say{});

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
    (void)rec.step(
        "client", p.conn, "send(\"GET /time\\n\")", [&] { return p.client.send("GET /time\n"); },
        say{});
    (void)rec.step(
        "client", p.conn, "shutdown(write)", [&] { return p.client.shutdown(shut::write); },
        say{": FIN, reading still works"});
    settle();

    char buf[256];
    auto recv256 = [&] { return p.server.recv(std::span<char>(buf), deadline::after(1s)); };
    (void)rec.step("server", p.conn, "recv(256)", recv256, say{});
    (void)rec.step("server", p.conn, "recv(256)", recv256, [](const result<std::size_t>& r) {
        return lab_said{describe(r) + (r && *r == 0 ? " (peer EOF: half-closed, not over)" : ""),
                        bytes_of(r)};
    });
    const std::string reply = "12:00:00, sent after your EOF\n";
    (void)rec.step(
        "server", p.conn, fmt::format("send_all({} B)", reply.size()),
        [&] { return p.server.send_all(reply, deadline::after(1s)); }, say{});
    const close_report sr = record_close(rec, p, false, "close_gracefully");
    settle();

    std::string got;
    auto rd = rec.step(
        "client", p.conn, "read_to_end()",
        [&] { return p.client.read_to_end(got, deadline::after(1s)); }, said_read_to_end);
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
    (void)rec.step(
        "client", p.conn, "send(\"first\")", [&] { return p.client.send("first"); }, say{});
    settle();
    char buf[64];
    auto recv64 = [&] { return p.server.recv(std::span<char>(buf), deadline::after(1s)); };
    (void)rec.step("server", p.conn, "recv(64)", recv64, say{});
    (void)rec.step(
        "server", p.conn, "shutdown(read)", [&] { return p.server.shutdown(shut::read); },
        say{": nothing is sent to the peer"});
    settle();
    auto s2 = rec.step(
        "client", p.conn, "send(\"second\")", [&] { return p.client.send("second"); },
        say{": accepted and acked"});
    settle();
    std::uint32_t queued = 0;
    auto r2 = rec.step("server", p.conn, "recv(64)", recv64, [&](const result<std::size_t>& r) {
        if (auto info = read_tcp_info(p.server.native_handle())) queued = info->recv_queue_bytes;
        return lab_said{describe(r) + fmt::format("; yet {} B sit in the receive queue", queued),
                        bytes_of(r)};
    });
    const close_report sr = record_close(rec, p, false, "close");
    settle();
    auto r3 = rec.step(
        "client", p.conn, "recv(64)",
        [&] { return p.client.recv(std::span<char>(buf), deadline::after(1s)); }, say{});
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
    auto sh = rec.step(
        "server", p.conn, "shutdown(both)", [&] { return p.server.shutdown(shut::both); },
        say{": FIN"});
    settle();
    char buf[64];
    auto r1 = rec.step(
        "client", p.conn, "recv(64)",
        [&] { return p.client.recv(std::span<char>(buf), deadline::after(1s)); }, say{});
    auto s1 = rec.step(
        "client", p.conn, "send(\"late request\")", [&] { return p.client.send("late request"); },
        say{});
    settle();
    auto s2 = rec.step(
        "client", p.conn, "send(\"more\")", [&] { return p.client.send("more"); }, say{});
    settle();
    (void)rec.step(
        "server", p.conn, "recv(64)",
        [&] { return p.server.recv(std::span<char>(buf), deadline::after(200ms)); }, say{});
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
        (void)rec.step(
            p.server_side, p.conn, "recv(16), then forgets close()",
            [&] { return p.server.recv(std::span<char>(buf), deadline::after(1s)); },
            [](const result<std::size_t>& r) {
                return lab_said{
                    describe(r) + fmt::format("; {} descriptors open", open_descriptors()),
                    bytes_of(r)};
            });
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
    (void)rec.step(
        "client", p.conn, "send(\"bye\")", [&] { return p.client.send("bye"); }, say{});
    settle();
    char buf[16];
    auto recv16 = [&] { return p.server.recv(std::span<char>(buf), deadline::after(1s)); };
    (void)rec.step("server", p.conn, "recv(16)", recv16, say{});
    record_close(rec, p, true, "close");
    settle();
    (void)rec.step("server", p.conn, "recv(16)", recv16, say{});
    record_close(rec, p, false, "close");
    settle();
    const auto conns = rec.connections();
    std::string server_state;
    const std::string client_state = rec.step(
        "client", p.conn, "(no descriptor left)",
        [&] {
            server_state = proc_tcp_state(conns[0].server_port, conns[0].client_port);
            return proc_tcp_state(conns[0].client_port, conns[0].server_port);
        },
        [](const std::string& state) {
            return lab_said{fmt::format("kernel still holds the client's socket: {}", state)};
        });

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
    (void)rec.step(
        "client", p.conn, "send(\"half a request\")",
        [&] { return p.client.send("half a request"); }, say{});
    settle();
    const close_report cr = record_close(rec, p, true, "abort");
    settle();
    char buf[64];
    auto recv64 = [&] { return p.server.recv(std::span<char>(buf), deadline::after(1s)); };
    const auto reset = make_error_code(errc::peer_reset);
    auto r1 = rec.step("server", p.conn, "recv(64)", recv64, say{});
    bool server_saw_reset = !r1 && r1.error() == reset;
    if (r1 && *r1 > 0) {
        auto r2 = rec.step("server", p.conn, "recv(64)", recv64, say{});
        server_saw_reset = !r2 && r2.error() == reset;
    }
    (void)rec.step(
        "server", p.conn, "send(\"too late\")", [&] { return p.server.send("too late"); }, say{});
    const close_report sr = record_close(rec, p, false, "close");

    lab_outcome o;
    o.showed_lesson = cr.outcome == close_outcome::aborted && server_saw_reset;
    o.verdict = fmt::format(
        "abort() (SO_LINGER 0) sent RST instead of FIN: the server read what had arrived, then got "
        "a reset instead of end-of-stream, and no TIME_WAIT was left anywhere (server close: {})",
        to_string(sr.outcome));
    return o;
}

}  // namespace

const std::vector<lab_scenario>& lab_scenarios() {
    // The TCP stories, then the TLS ones (lab_tls.cpp).
    static const std::vector<lab_scenario> all = [] {
        std::vector<lab_scenario> v = {
            {"naive-close-loses-data",
             "close() with unread request bytes: RST, and the reply is cut",
             "The server reads only part of the request, sends a 256 KiB reply and calls close(). "
             "The "
             "unread bytes make Linux send RST instead of FIN; the reply still queued is thrown "
             "away "
             "and the client reads a short reply followed by ECONNRESET.",
             [](lab_recorder& r, listener& l) { return reply_story(r, l, false); }},
            {"orderly-close", "the same server ending with close_gracefully(): every byte arrives",
             "Same request and reply, but the server ends with shutdown(write), reads and discards "
             "until the client's EOF, then closes: FIN both ways and the whole reply delivered.",
             [](lab_recorder& r, listener& l) { return reply_story(r, l, true); }},
            {"half-close", "the client sends FIN after its request and still gets the reply",
             "shutdown(write) after the request tells the server 'that is all'; the server sees "
             "EOF, "
             "which means half-closed, not over, and still sends its reply.",
             half_close},
            {"shut-rd", "shutdown(read) sends nothing; the peer's bytes still arrive",
             "After shutdown(read) recv() says end-of-stream, but Linux tells the peer nothing and "
             "keeps accepting its data; closing with that data unread then sends RST.",
             shut_rd},
            {"shut-rdwr", "shutdown(both): FIN, then RST for any late bytes from the peer",
             "shutdown(both) sends FIN like shutdown(write), but data arriving afterwards is "
             "answered "
             "with RST, so a peer still sending loses the connection.",
             shut_rdwr},
            {"close-wait-leak",
             "a server that forgets close() after the peer's FIN leaks descriptors",
             "Each client closes; the server sees EOF and never calls close(). Its sockets sit in "
             "CLOSE_WAIT, each holding a descriptor, until the process runs out of them; orderly "
             "doctor's check, run on the lab itself, names them.",
             close_wait_leak},
            {"time-wait", "the side that closes first holds TIME_WAIT",
             "The client closes first: it goes FIN_WAIT1, FIN_WAIT2, then TIME_WAIT for 60 s after "
             "the "
             "server's FIN, while the server passes through CLOSE_WAIT and LAST_ACK to CLOSED.",
             time_wait},
            {"abort-rst", "abort(): SO_LINGER 0 sends RST, the peer gets ECONNRESET",
             "abort() discards what is queued and sends RST: the peer's recv() reports a reset "
             "instead "
             "of end-of-stream and nobody keeps TIME_WAIT. For errors and timeouts only.",
             abort_rst},
        };
        for (auto& sc : lab_tls_scenarios())
            v.push_back(std::move(sc));
        return v;
    }();
    return all;
}

}  // namespace orderly::cli
