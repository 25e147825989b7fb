// Blocking layer, Unix socket: shutdown(shut::read) then close_gracefully() while the peer is
// still open and has sent no FIN. Expected: not `clean` (the peer never finished); timed_out at
// the deadline, like the TCP case (stream_socket_test close_gracefully_after_shut_rd_...).
#include <cstdio>
#include <orderly/orderly.hpp>
using namespace std::chrono_literals;
int main() {
    auto pr = orderly::stream_socket::pair().value();
    auto& a = pr.first;
    auto& b = pr.second;
    (void)a.send_all("hello");
    (void)a.shutdown(orderly::shut::read).value();
    auto r = a.close_gracefully({.timeout = 200ms, .drain_limit = 4096});
    std::printf("server: %s\n", r.to_string().c_str());
    std::printf("peer_eof in report: %d (peer never sent FIN)\n", r.peer_eof);
    // The peer: still open, has not read; it now writes.
    auto s = b.send_all("late");
    std::printf("peer write after our 'clean': %s\n", s.ok() ? "ok" : s.error.message().c_str());
    return r.outcome == orderly::close_outcome::clean ? 1 : 0;
}
