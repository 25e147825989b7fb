// connect_probe MODE WHERE [TIMEOUT_MS]: one Happy Eyeballs connect, by name, in a child
// process, for tests/faults/eyeballs_test.cpp. The test runs it inside a namespace of its own
// with a private /etc/hosts or /etc/resolv.conf bind-mounted, which a gtest process (threads,
// shared mounts) cannot do to itself.
//   MODE blocking: orderly::connect(WHERE, ...); async: the event layer's connect on a loop.
// Prints one line: "ok <winner> <took_ms> <report as JSON>" (exit 0) or
// "error <code value> <message> <report as JSON>" (exit 1); exit 2 on bad arguments.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "orderly/event/connector.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/connect.hpp"

namespace {

int print(const orderly::result<orderly::endpoint, orderly::error_info>& r,
          const orderly::connect_report& report) {
    const double took = std::chrono::duration<double, std::milli>(report.took).count();
    if (r) {
        std::printf("ok %s %.1f %s\n", r->to_string().c_str(), took, report.to_json().c_str());
        return 0;
    }
    std::printf("error %d %s %s\n", r.error().code.value(), r.error().message().c_str(),
                report.to_json().c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        (void)std::fprintf(stderr, "usage: connect_probe blocking|async HOST:PORT [TIMEOUT_MS]\n");
        return 2;
    }
    const std::string_view mode = argv[1];
    const std::string where = argv[2];
    orderly::connect_options opts;
    if (argc > 3) opts.timeout = std::chrono::milliseconds(std::atoi(argv[3]));
    orderly::connect_report report;
    if (mode == "blocking") {
        auto s = orderly::connect(where, opts, &report);
        if (!s) return print(orderly::failure{s.error()}, report);
        auto peer = s->peer_endpoint();
        return print(peer ? *peer : orderly::endpoint{}, report);
    }
    if (mode != "async") return 2;
    orderly::loop lp;
    int code = 1;
    (void)orderly::connect(
        lp, where, nullptr,
        [&](orderly::result<orderly::connection_ptr, orderly::error_info> c,
            const orderly::connect_report& rep) {
            if (c) {
                code = print((*c)->peer_endpoint(), rep);
                (*c)->close();
            } else {
                code = print(orderly::failure{c.error()}, rep);
            }
            lp.stop();
        },
        opts);
    lp.run();
    return code;
}
