// The lab's TLS experiments: blocking tls_stream on both ends of a loopback pair, with a
// throwaway certificate from make_self_signed(). TLS 1.3 encrypts alerts, so on the wire a
// close_notify is a short record like any other; the rows say which record each call wrote, and
// the captured segment that carries it is labelled from the library side (lab_tls_record).

#include <fmt/core.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>

#include "lab.hpp"
#include "lab_story.hpp"
#include "orderly/tls/self_signed.hpp"
#include "orderly/tls/tls_stream.hpp"

namespace orderly::cli {
namespace {

using namespace std::chrono_literals;

// The certificate both ends use: the server presents it, the client trusts it alone (ca_file)
// and verifies 127.0.0.1 against its IP SAN. The file lives as long as the scenario.
struct lab_certs {
    std::filesystem::path dir;
    std::optional<tls_context> client;
    std::optional<tls_context> server;

    explicit lab_certs(lab_recorder& rec) {
        const self_signed_pem pem = make_self_signed().value();
        // A fresh private directory (mkdtemp, mode 0700): no name another user could have taken.
        std::string tmpl = (std::filesystem::temp_directory_path() / "orderly-lab-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
        }
        dir = tmpl;
        const std::string ca = (dir / "cert.pem").string();
        write_pem_file(ca, pem.cert).value();
        tls_server_config sc;
        sc.cert_pem = pem.cert;
        sc.key_pem = pem.key;
        server = tls_context::server(sc).value();
        tls_client_config cc;
        cc.ca_file = ca;
        client = tls_context::client(cc).value();
        rec.note(
            "make_self_signed(): a throwaway certificate for localhost, 127.0.0.1, ::1; the client "
            "trusts it alone (ca_file) and verifies 127.0.0.1 against it");
    }
    ~lab_certs() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    lab_certs(const lab_certs&) = delete;
    lab_certs& operator=(const lab_certs&) = delete;
};

// One end of the pair: its stream and where its rows go.
struct tls_end {
    tls_stream tls;
    std::size_t conn = 0;
    bool client = true;
    std::string side;
};

// A step on a TLS end: `say(result, wire)` tells the row, `wire` being the TCP bytes the call
// sent; those bytes are registered as `what` (the records it wrote) for the segment rows.
template <class Call, class Say>
auto tls_step(lab_recorder& rec, tls_end& end, std::string call_text, std::string what,
              Call&& make_call, Say&& say_it) {
    const std::uint64_t before = end.tls.socket().bytes_sent();
    std::uint64_t wire = 0;
    auto r = rec.step(end.side, end.conn, std::move(call_text), std::forward<Call>(make_call),
                      [&](const auto& res) {
                          wire = end.tls.socket().bytes_sent() - before;
                          return say_it(res, wire);
                      });
    if (wire > 0 && !what.empty()) {
        rec.tls_record({end.conn, end.client, before, wire, std::move(what)});
    }
    return r;
}

// "clean; close_notify sent (24 B), received" and the like, from the report's TLS part and the
// TCP bytes the close wrote (short: the ladder has room for about 55 characters beside a side).
std::string tls_close_text(const close_report& r, std::uint64_t wire) {
    std::string s = describe(r);
    if (r.tls) {
        s += fmt::format("; close_notify {}sent{}, {}received",
                         r.tls->close_notify_sent ? "" : "not ",
                         wire > 0 ? fmt::format(" ({} B)", wire) : "",
                         r.tls->close_notify_received ? "" : "not ");
    }
    return s;
}

// A close on a TLS end. The descriptor leaves the recorder first (as in record_close).
template <class Close>
close_report tls_close(lab_recorder& rec, tls_end& end, std::string call_text, std::string what,
                       Close&& do_close) {
    if (end.client) {
        rec.set_client_fd(end.conn, -1);
    } else {
        rec.set_server_fd(end.conn, -1);
    }
    return tls_step(rec, end, std::move(call_text), std::move(what), std::forward<Close>(do_close),
                    [](const close_report& r, std::uint64_t wire) {
                        return lab_said{tls_close_text(r, wire)};
                    });
}

struct tls_pair {
    tls_end client;
    tls_end server;
};

// connect/accept, then both handshakes at once (the server's on a thread).
tls_pair open_tls_pair(lab_recorder& rec, listener& l, lab_certs& certs) {
    auto p = open_pair(rec, l);
    tls_pair t{
        {tls_stream::client(std::move(p.client), *certs.client, "127.0.0.1").value(), p.conn, true,
         "client"},
        {tls_stream::server(std::move(p.server), *certs.server).value(), p.conn, false, "server"}};
    auto said_handshake = [](tls_end& end) {
        return [&end](const result<void, error_info>& r, std::uint64_t wire) {
            if (!r) return lab_said{"error: " + r.error().message()};
            return lab_said{fmt::format("ok: {}, {} B of records", end.tls.version(), wire)};
        };
    };
    auto shake = [](tls_end& end) {
        return [&end] { return end.tls.handshake(deadline::after(5s)); };
    };
    std::thread server([&] {
        (void)tls_step(rec, t.server, "handshake()", "TLS handshake", shake(t.server),
                       said_handshake(t.server));
    });
    auto hs = tls_step(rec, t.client, "handshake()", "TLS handshake", shake(t.client),
                       said_handshake(t.client));
    server.join();
    hs.value();  // a failed handshake ends the experiment (the row says why)
    rec.note(fmt::format("{} with {}", t.client.tls.version(), t.client.tls.cipher()));
    settle();
    return t;
}

// send_all of `data` as application data records.
transfer_result send_records(lab_recorder& rec, tls_end& end, const std::string& data,
                             const std::string& name) {
    return tls_step(
        rec, end, fmt::format("send_all({} {} B)", name, data.size()),
        fmt::format("application data ({})", name),
        [&] { return end.tls.send_all(data, deadline::after(2s)); },
        [](const transfer_result& r, std::uint64_t wire) {
            return lab_said{describe(r) + fmt::format(", {} B on the wire", wire), bytes_of(r)};
        });
}

lab_said said_tls_recv(const result<std::size_t>& r, std::uint64_t /*wire*/) {
    if (r && *r == 0) return {"0: close_notify received: TLS EOF, not the end", 0};
    return {describe(r), bytes_of(r)};
}

const std::string request = "GET /report\n";
const std::string reply_line = "every byte of the report, then an end you can trust\n";

lab_outcome tls_orderly_close(lab_recorder& rec, listener& l) {
    lab_certs certs(rec);
    auto t = open_tls_pair(rec, l, certs);
    (void)send_records(rec, t.client, request, "request");
    (void)tls_step(
        rec, t.client, "shutdown(write)", "close_notify alert",
        [&] { return t.client.tls.shutdown(shut::write); },
        [](const result<void>& r, std::uint64_t wire) {
            return lab_said{describe(r) +
                            fmt::format(": close_notify sent ({} B alert record), then FIN", wire)};
        });
    settle();

    char buf[256];
    auto recv256 = [&] { return t.server.tls.recv(std::span<char>(buf), deadline::after(2s)); };
    (void)tls_step(rec, t.server, "recv(256)", "", recv256, said_tls_recv);
    auto eof = tls_step(rec, t.server, "recv(256)", "", recv256, said_tls_recv);
    std::string reply;
    for (int i = 0; i < 40; ++i)
        reply += reply_line;
    (void)send_records(rec, t.server, reply, "reply");
    const close_report sr = tls_close(rec, t.server, "close_gracefully()", "close_notify alert",
                                      [&] { return t.server.tls.close_gracefully(); });
    settle();

    std::string got;
    auto rd = tls_step(
        rec, t.client, "read_to_end()", "",
        [&] { return t.client.tls.read_to_end(got, deadline::after(2s)); },
        [](const transfer_result& r, std::uint64_t) {
            return lab_said{
                r.has_value() ? fmt::format("{} B, then close_notify: the reply is whole", r.bytes)
                              : describe(r),
                bytes_of(r)};
        });
    const close_report cr = tls_close(rec, t.client, "close_gracefully()", "",
                                      [&] { return t.client.tls.close_gracefully(); });
    settle();

    lab_outcome o;
    o.showed_lesson = eof && *eof == 0 && rd.has_value() && got == reply &&
                      sr.outcome == close_outcome::clean && cr.outcome == close_outcome::clean;
    o.verdict = fmt::format(
        "close_notify both ways, then FIN both ways: the client received all {} of {} B and "
        "ended at the server's close_notify, so it knows the reply is complete; server {}, "
        "client {}",
        got.size(), reply.size(), to_string(sr.outcome), to_string(cr.outcome));
    return o;
}

lab_outcome tls_truncation(lab_recorder& rec, listener& l) {
    lab_certs certs(rec);
    auto t = open_tls_pair(rec, l, certs);
    (void)send_records(rec, t.client, request, "request");
    settle();
    char buf[256];
    (void)tls_step(
        rec, t.server, "recv(256)", "",
        [&] { return t.server.tls.recv(std::span<char>(buf), deadline::after(2s)); },
        said_tls_recv);
    std::string reply;
    for (int i = 0; i < 40; ++i)
        reply += reply_line;
    (void)send_records(rec, t.server, reply, "reply");
    // The careless server: it ends TCP under TLS without close_notify, as a program does that
    // closes its socket without SSL_shutdown().
    const int fd = t.server.tls.socket().native_handle();
    (void)rec.step(
        "server", t.server.conn, "TCP shutdown(SHUT_WR), no SSL_shutdown()",
        [&] { return ::shutdown(fd, SHUT_WR); },
        [](int rc) {
            return lab_said{
                rc == 0 ? "ok: FIN, no close_notify before it"
                        : "error: " + std::error_code(errno, std::generic_category()).message()};
        });
    settle();

    std::string got;
    std::uint64_t alert_bytes = 0;
    // OpenSSL answers the unexpected EOF with a fatal alert of its own (a record like any other
    // on the wire in TLS 1.3).
    auto rd = tls_step(
        rec, t.client, "read_to_end()", "fatal alert (OpenSSL's, after the unexpected EOF)",
        [&] { return t.client.tls.read_to_end(got, deadline::after(2s)); },
        [&](const transfer_result& r, std::uint64_t wire) {
            alert_bytes = wire;
            if (!r.has_value() && r.error() == make_error_code(errc::tls_truncated)) {
                return lab_said{
                    fmt::format("{} B, then tls_truncated: FIN, no close_notify", r.bytes),
                    bytes_of(r)};
            }
            return lab_said{describe(r), bytes_of(r)};
        });
    rec.note(
        "Python's ssl (suppress_ragged_eofs=True, its default) would have returned b'' here: EOF, "
        "and the reply taken as complete");
    if (alert_bytes > 0) {
        rec.note(fmt::format(
            "OpenSSL answered the unexpected EOF with a fatal alert record ({} B), sent by the "
            "client's read_to_end()",
            alert_bytes));
    }
    const close_report cr = tls_close(rec, t.client, "close_gracefully()", "",
                                      [&] { return t.client.tls.close_gracefully(); });
    settle();
    // The server reads the client's alert, so that its close finds nothing unread (no RST).
    (void)tls_step(
        rec, t.server, "recv(256)", "",
        [&] { return t.server.tls.recv(std::span<char>(buf), deadline::after(2s)); },
        [&](const result<std::size_t>& r, std::uint64_t) {
            std::string s = describe(r);
            if (const auto& d = t.server.tls.last_error_detail(); !r && !d.empty()) s += ": " + d;
            return lab_said{s, bytes_of(r)};
        });
    const close_report sr =
        tls_close(rec, t.server, "close()", "", [&] { return t.server.tls.close(); });
    settle();

    lab_outcome o;
    const bool truncated = !rd.has_value() && rd.error() == make_error_code(errc::tls_truncated);
    o.showed_lesson = truncated && got == reply && cr.outcome == close_outcome::tls_truncated;
    o.verdict = fmt::format(
        "the server's FIN came without close_notify: the client got {} of {} B and then "
        "{}: nothing proves the reply ended where the server meant it to (a FIN can be "
        "forged). Python's ssl with its default suppress_ragged_eofs=True would have said EOF "
        "and taken the reply as complete; orderly's client close is {} (server close: {})",
        got.size(), reply.size(), truncated ? "tls_truncated" : describe(rd), to_string(cr.outcome),
        to_string(sr.outcome));
    return o;
}

}  // namespace

std::vector<lab_scenario> lab_tls_scenarios() {
    return {
        {"tls-truncation", "TLS: a FIN without close_notify is tls_truncated, not EOF",
         "Over TLS only close_notify proves the data ended where the sender meant it to. The "
         "server sends its reply and ends TCP without close_notify; orderly's client reports "
         "tls_truncated where Python's default (suppress_ragged_eofs) would have said EOF.",
         tls_truncation},
        {"tls-orderly-close", "TLS: close_notify both ways, then FIN both ways",
         "The client sends its request and shutdown(write): close_notify, then FIN. The server "
         "reads to the close_notify (TLS EOF), replies and ends with close_gracefully(): its own "
         "close_notify and FIN. Both ends report clean.",
         tls_orderly_close},
    };
}

}  // namespace orderly::cli
