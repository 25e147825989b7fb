// The blocking close calls keep their time contracts even when the application turned SO_LINGER
// on with a positive time: Linux then makes close() wait for unsent data even on a non-blocking
// socket, which would let close() block and close_gracefully() overrun its deadline.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "orderly/net/socket_options.hpp"
#include "orderly/net/stream_socket.hpp"
#include "support/loopback.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

// A pair where the server has megabytes queued that the client will never read, so the kernel
// cannot finish sending them (the client's window stays closed).
test::socket_pair stuck_pair() {
    auto p = test::make_pair();
    const int small = 4096;
    ::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const std::string chunk(64 * 1024, 'q');
    for (int i = 0; i < 512; ++i) {
        auto n = p.server.send(chunk, deadline::after(0ms));
        if (!n) break;  // the buffers are full
    }
    return p;
}

TEST(close_deadline, close_gracefully_is_bounded_by_its_timeout_despite_so_linger) {
    auto p = stuck_pair();
    ASSERT_TRUE(set_linger(p.server.native_handle(), std::chrono::seconds(3)).has_value());
    ASSERT_TRUE(p.client.shutdown(shut::write).has_value());  // the peer's FIN: drain ends at once
    const auto t0 = clock::now();
    const auto r = p.server.close_gracefully({.timeout = 300ms, .drain_limit = 1024});
    const auto took = clock::now() - t0;
    EXPECT_LT(took, 1s) << "close() lingered past the deadline: " << r.to_string();
    EXPECT_GT(r.unacked_bytes, 0U) << "the report still says what was owed";
}

TEST(close_deadline, plain_close_does_not_block_despite_so_linger) {
    auto p = stuck_pair();
    ASSERT_TRUE(set_linger(p.server.native_handle(), std::chrono::seconds(3)).has_value());
    const auto t0 = clock::now();
    (void)p.server.close();
    EXPECT_LT(clock::now() - t0, 1s) << "close() is documented never to block";
}

TEST(close_deadline, destructor_does_not_block_despite_so_linger) {
    auto p = stuck_pair();
    ASSERT_TRUE(set_linger(p.server.native_handle(), std::chrono::seconds(3)).has_value());
    const auto t0 = clock::now();
    { stream_socket gone = std::move(p.server); }  // destroy_policy::close, no report
    EXPECT_LT(clock::now() - t0, 1s) << "the destructor's close is documented never to block";
}

}  // namespace
}  // namespace orderly
