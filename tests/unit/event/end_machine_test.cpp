// The orderly end on its own: no sockets, no loop, a clock that moves only when the test says.

#include "orderly/event/end_machine.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

namespace orderly {
namespace {

const clock::time_point t0 = clock::time_point{} + 1000s;

end_limits no_limits() {
    return {};
}

TEST(end_machine, starts_open_and_reading) {
    end_machine m(no_limits(), t0);
    EXPECT_EQ(m.state(), connection_state::open);
    EXPECT_TRUE(m.wants_read());
    EXPECT_FALSE(m.fin_due(true));
    EXPECT_EQ(m.next_deadline(false), clock::time_point::max());
    EXPECT_EQ(m.method(), close_method::close);
}

TEST(end_machine, our_half_close_waits_for_the_output_then_fin) {
    end_machine m(no_limits(), t0);
    EXPECT_TRUE(m.want_fin());
    EXPECT_FALSE(m.want_fin()) << "a second shutdown_write is not news";
    EXPECT_EQ(m.state(), connection_state::half_closed_by_us);
    EXPECT_EQ(m.method(), close_method::graceful);
    EXPECT_FALSE(m.fin_due(false)) << "output still pending: FIN must wait behind it";
    EXPECT_TRUE(m.fin_due(true));
    m.fin_sent();
    EXPECT_FALSE(m.fin_due(true));
    EXPECT_TRUE(m.wants_read()) << "half-closed by us: still reading";
    EXPECT_FALSE(m.both_done());
    m.peer_eof(t0 + 1s);
    EXPECT_TRUE(m.both_done());
    EXPECT_FALSE(m.wants_read());
}

TEST(end_machine, peer_eof_is_half_closed_not_over) {
    end_limits l;
    l.close_wait_after = 2s;
    end_machine m(l, t0);
    m.peer_eof(t0 + 1s);
    EXPECT_TRUE(m.refresh_state(t0 + 1s));
    EXPECT_EQ(m.current_state(), connection_state::half_closed_by_peer);
    EXPECT_FALSE(m.wants_read()) << "nothing more can arrive";
    EXPECT_FALSE(m.both_done()) << "we have not said FIN: the connection is still writable";
    EXPECT_EQ(m.next_deadline(false), t0 + 3s);
    EXPECT_FALSE(m.close_wait_due(t0 + 2s));
    EXPECT_TRUE(m.close_wait_due(t0 + 3s));
    m.close_wait_reported();
    EXPECT_FALSE(m.close_wait_due(t0 + 10s)) << "reported once";
    EXPECT_TRUE(m.want_fin());
    EXPECT_TRUE(m.refresh_state(t0 + 4s));
    EXPECT_EQ(m.current_state(), connection_state::closing);
    EXPECT_EQ(m.state_since(), t0 + 4s);
}

TEST(end_machine, close_gracefully_only_tightens_its_bounds) {
    end_machine m(no_limits(), t0);
    EXPECT_EQ(m.begin_close(t0, 5s, 1000), end_machine::close_step::started);
    EXPECT_TRUE(m.is_closing());
    EXPECT_TRUE(m.fin_wanted());
    EXPECT_EQ(m.next_deadline(false), t0 + 5s);
    EXPECT_EQ(m.begin_close(t0 + 1s, 10s, 5000), end_machine::close_step::unchanged);
    EXPECT_EQ(m.next_deadline(false), t0 + 5s);
    EXPECT_EQ(m.begin_close(t0 + 1s, 1s, 5000), end_machine::close_step::tightened);
    EXPECT_EQ(m.next_deadline(false), t0 + 2s);
    EXPECT_EQ(m.begin_close(t0 + 1s, 0s, 5000), end_machine::close_step::out_of_time);
    EXPECT_EQ(m.timeout_due(t0 + 2s, false), timeout_kind::close);
    EXPECT_EQ(m.timeout_due(t0 + 1s, false), timeout_kind::none);
}

TEST(end_machine, a_zero_timeout_is_out_of_time_at_once) {
    end_machine m(no_limits(), t0);
    EXPECT_EQ(m.begin_close(t0, 0s, 1000), end_machine::close_step::out_of_time);
}

TEST(end_machine, the_drain_cap_is_the_smallest_asked_for) {
    end_machine m(no_limits(), t0);
    (void)m.begin_close(t0, 5s, 100);
    (void)m.begin_close(t0, 5s, 10);
    EXPECT_TRUE(m.drain(10));
    EXPECT_FALSE(m.drain(1));
    EXPECT_EQ(m.drained_bytes(), 11U);
}

TEST(end_machine, closing_reads_even_when_paused) {
    end_machine m(no_limits(), t0);
    m.set_user_paused(true, t0);
    m.set_backpressure_paused(true, t0);
    EXPECT_FALSE(m.wants_read());
    (void)m.begin_close(t0, 5s, 100);
    EXPECT_TRUE(m.wants_read()) << "the peer's bytes must be drained";
    m.peer_eof(t0);
    EXPECT_FALSE(m.wants_read());
}

TEST(end_machine, inactivity_timeouts_and_their_order) {
    end_limits l;
    l.idle = 10s;
    l.read = 4s;
    l.write = 2s;
    l.lifetime = 60s;
    end_machine m(l, t0);
    EXPECT_EQ(m.next_deadline(false), t0 + 4s) << "read comes first";
    EXPECT_EQ(m.next_deadline(true), t0 + 2s) << "write counts only with output pending";
    EXPECT_EQ(m.timeout_due(t0 + 3s, true), timeout_kind::write);
    EXPECT_EQ(m.timeout_due(t0 + 4s, false), timeout_kind::read);
    m.read_progress(t0 + 3s);
    EXPECT_EQ(m.timeout_due(t0 + 4s, false), timeout_kind::none) << "a byte pushes it back";
    m.set_user_paused(true, t0 + 3s);
    EXPECT_EQ(m.timeout_due(t0 + 9s, false), timeout_kind::none) << "no read timeout while paused";
    EXPECT_EQ(m.timeout_due(t0 + 13s, false), timeout_kind::idle);
    m.set_user_paused(false, t0 + 12s);
    EXPECT_EQ(m.next_deadline(false), t0 + 16s) << "read counts again from the resume";
    EXPECT_EQ(m.timeout_due(t0 + 60s, false), timeout_kind::lifetime);
}

TEST(end_machine, while_closing_only_the_close_deadline_and_the_lifetime_count) {
    end_limits l;
    l.idle = 1s;
    l.read = 1s;
    l.lifetime = 3s;
    end_machine m(l, t0);
    (void)m.begin_close(t0, 10s, 100);
    EXPECT_EQ(m.timeout_due(t0 + 2s, true), timeout_kind::none);
    EXPECT_EQ(m.next_deadline(true), t0 + 3s);
    EXPECT_EQ(m.timeout_due(t0 + 3s, true), timeout_kind::lifetime);
}

TEST(end_machine, the_ack_wait_polls_at_a_growing_interval_bounded_by_the_deadline) {
    end_limits l;
    l.write = 1s;
    end_machine m(l, t0);
    (void)m.want_fin();
    m.fin_sent();
    m.peer_eof(t0);
    m.begin_ack_wait(t0);
    EXPECT_TRUE(m.in_ack_wait());
    EXPECT_EQ(m.next_deadline(false), t0 + 1ms);
    EXPECT_FALSE(m.ack_poll_due(t0));
    EXPECT_TRUE(m.ack_poll_due(t0 + 1ms));
    auto now = t0 + 1ms;
    std::chrono::milliseconds expect{2};
    for (int i = 0; i < 10; ++i) {
        m.ack_poll_missed(now);
        EXPECT_EQ(m.next_deadline(false), std::min(now + expect, t0 + 1s)) << i;
        now += expect;
        expect = std::min(expect * 2, std::chrono::milliseconds(64));
    }
    EXPECT_EQ(m.timeout_due(t0 + 1s, false), timeout_kind::write)
        << "the write timeout bounds a peer that never acknowledges";
    // close_gracefully during the ack wait: its deadline is the next thing due, at once.
    EXPECT_EQ(m.begin_close(now, 5ms, 100), end_machine::close_step::started);
    EXPECT_LE(m.next_deadline(false), now + 5ms);
}

TEST(end_machine, released_is_closed_and_wants_nothing) {
    end_machine m(no_limits(), t0);
    m.released();
    EXPECT_TRUE(m.refresh_state(t0));
    EXPECT_EQ(m.current_state(), connection_state::closed);
    EXPECT_FALSE(m.wants_read());
    EXPECT_EQ(m.next_deadline(true), clock::time_point::max());
}

TEST(end_machine, facts_for_the_end_rules) {
    end_machine m(no_limits(), t0);
    (void)m.want_fin();
    m.fin_sent();
    m.peer_eof(t0);
    auto f = m.facts();
    EXPECT_TRUE(f.fin_sent);
    EXPECT_TRUE(f.peer_eof);
    f.queues_known = true;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::clean);
    f.unacked = 10;
    EXPECT_EQ(judge_release(f).outcome, close_outcome::closed) << "unacknowledged is not clean";
}

TEST(end_machine, handshake_timeout_counts_from_opening_until_the_handshake_is_done) {
    end_limits l;
    l.handshake = 2s;
    end_machine plain(l, t0);
    EXPECT_EQ(plain.next_deadline(false), clock::time_point::max()) << "no handshake, no timer";
    end_machine m(l, t0);
    m.handshake_started();
    EXPECT_EQ(m.next_deadline(false), t0 + 2s);
    m.read_progress(t0 + 1s);  // bytes of the handshake do not push it back
    m.set_backpressure_paused(true, t0 + 1s);
    EXPECT_TRUE(m.wants_read()) << "the output cannot drain before the handshake is done";
    EXPECT_EQ(m.timeout_due(t0 + 2s, false), timeout_kind::handshake);
    m.handshake_finished();
    EXPECT_FALSE(m.wants_read()) << "the pause holds again";
    EXPECT_EQ(m.timeout_due(t0 + 3s, false), timeout_kind::none);
    EXPECT_EQ(m.next_deadline(false), clock::time_point::max());
}

TEST(end_machine, over_tls_close_notify_then_the_tcp_fin_end_the_peer_direction) {
    end_machine m(no_limits(), t0);
    m.set_tls();
    m.set_user_paused(true, t0);
    m.want_fin();
    m.fin_sent();
    m.peer_eof(t0 + 1s);  // the peer's close_notify
    EXPECT_FALSE(m.both_done()) << "its TCP FIN is still to come";
    EXPECT_TRUE(m.wants_read()) << "read on to the FIN, even paused: no plaintext can follow";
    m.tcp_eof();
    EXPECT_TRUE(m.both_done());
    EXPECT_FALSE(m.wants_read());
}

}  // namespace
}  // namespace orderly
