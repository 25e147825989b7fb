// The end rules every layer shares: the verdict for each combination that matters.

#include "orderly/net/end_rules.hpp"

#include <gtest/gtest.h>

#include <cerrno>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

end_facts both_fins() {
    end_facts f;
    f.fin_sent = true;
    f.peer_eof = true;
    f.queues_known = true;
    return f;
}

TEST(end_rules, clean_needs_both_fins_every_ack_and_nothing_pending) {
    EXPECT_EQ(judge_release(both_fins()).outcome, close_outcome::clean);
    auto f = both_fins();
    f.unacked = 1;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::closed);
    f = both_fins();
    f.queues_known = false;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::closed) << "unknown is not clean";
    f = both_fins();
    f.peer_eof = false;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::closed);
    f = both_fins();
    f.fin_sent = false;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::closed);
}

TEST(end_rules, unread_bytes_at_release_are_discarded_with_rst) {
    auto f = both_fins();
    f.unread = 3;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::unread_data_discarded);
}

TEST(end_rules, a_pending_reset_is_the_peers) {
    auto f = both_fins();
    f.pending_error = ECONNRESET;
    const auto v = judge_release(f);
    EXPECT_EQ(v.outcome, close_outcome::peer_reset);
    EXPECT_EQ(v.error, std::error_code(ECONNRESET, std::system_category()));
    f.pending_error = EPIPE;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::peer_reset);
}

TEST(end_rules, enotconn_is_explained_by_so_error) {
    end_facts f;
    f.pending_error = ECONNRESET;
    EXPECT_EQ(judge_error(ENOTCONN, f).outcome, close_outcome::peer_reset);
    f.pending_error = ETIMEDOUT;
    const auto v = judge_error(ENOTCONN, f);
    EXPECT_EQ(v.outcome, close_outcome::error);
    EXPECT_EQ(v.error, std::error_code(ETIMEDOUT, std::system_category()));
    f.pending_error = 0;
    EXPECT_EQ(judge_error(ENOTCONN, f).outcome, close_outcome::error)
        << "no evidence of a reset: say what the kernel said";
}

TEST(end_rules, a_reset_after_our_shut_read_and_fin_is_ours) {
    end_facts f;
    f.read_shut = true;
    f.fin_sent = true;
    const auto v = judge_error(ECONNRESET, f);
    EXPECT_EQ(v.outcome, close_outcome::unread_data_discarded);
    EXPECT_EQ(v.error, errc::reset_after_shut_read);
    f.fin_sent = false;
    EXPECT_EQ(judge_error(ECONNRESET, f).outcome, close_outcome::peer_reset)
        << "before our FIN Linux still queues late bytes: a reset then is the peer's";
}

}  // namespace
}  // namespace orderly
