// Close reports of the blocking layer found wrong by the second independent review (after issue
// 16), reproduced against the public headers (review/unix_shut_rd_graceful.cpp,
// review/blocking_matrix.cpp). Each test FAILS
// on the code it was written against and is DISABLED_ until its fix lands: enable it with the fix.

#include <gtest/gtest.h>

#include <chrono>
#include <utility>

#include "orderly/net/stream_socket.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// R4. Unix socket: shutdown(shut::read), then close_gracefully() while the peer is open and has
// sent no FIN. recv() returns 0 because of our own SHUT_RD; close_gracefully() asks
// peer_fin_received(), which answers "yes" for every socket without TCP_INFO, so the report says
// `clean` with peer_eof yes — a FIN that never came, and our 5 bytes still unread in the peer's
// queue (the peer's next write gets ECONNRESET). The TCP case waits for the FIN and times out
// (stream_socket.close_gracefully_after_shut_rd_still_waits_for_the_peer_fin). Root cause:
// peer_fin_received() in src/net/stream_socket.cpp (`if (!ti) return true;`).
TEST(review_close_truth, unix_shut_rd_then_close_gracefully_is_not_clean_without_the_fin) {
    auto pr = stream_socket::pair();
    ASSERT_TRUE(pr.has_value());
    auto& ours = pr->first;
    ASSERT_TRUE(ours.send_all("hello").has_value());
    ASSERT_TRUE(ours.shutdown(shut::read).has_value());
    const auto r = ours.close_gracefully({.timeout = 200ms, .drain_limit = 4096});
    EXPECT_FALSE(r.peer_eof) << "the peer never shut down writing; " << r.to_string();
    EXPECT_NE(r.outcome, close_outcome::clean) << r.to_string();
}

// R11. On a Unix socket SIOCOUTQ is memory (each queued skb's truesize), not bytes: 5 bytes the
// peer has not read are reported as "unacked 768 B", and a close_gracefully() that ends `clean`
// prints "unacked 138240 B" in the same line after a 1 MB answer — the contradiction issue 16
// removed for TCP. The rules already treat a Unix socket as having nothing to acknowledge
// (end_rules.hpp), so the report should not show a byte count that is neither bytes nor
// unacknowledged. Root cause: stream_socket::finish() (src/net/stream_socket.cpp) and
// connection::release() (src/event/connection.cpp) copy read_queue_sizes()' unsent_or_unacked
// into unacked_bytes for Unix sockets.
TEST(review_close_truth, unix_unacked_bytes_are_bytes_not_memory) {
    auto pr = stream_socket::pair();
    ASSERT_TRUE(pr.has_value());
    ASSERT_TRUE(pr->first.send_all("hello").has_value());
    const auto r = pr->first.close();
    EXPECT_LE(r.unacked_bytes, 5U) << r.to_string();
}

}  // namespace
}  // namespace orderly
