// The ends of a tls_stream: the TLS end (close_notify both ways) here, the TCP end under it by
// stream_socket's own close machinery, so the report's TCP part is the socket's own.
#include <openssl/ssl.h>

#include "orderly/core/errc.hpp"
#include "orderly/tls/tls_stream.hpp"

namespace orderly {

void tls_stream::fill_report(close_report& r) const {
    tls_close_info t;
    t.close_notify_sent = our_notify_;
    t.close_notify_received = peer_notify_;
    t.wait = wait_;
    t.version = version();
    t.cipher = cipher();
    t.alpn = alpn();
    t.detail = detail_;
    r.tls = std::move(t);
    // A dead TLS state outranks an orderly-looking TCP end: the TCP FINs say nothing about the
    // data TLS protects.
    // Our own abort after the TLS state died (a failed handshake, a bad record) ends the
    // connection because of that failure: the TLS outcome is what happened.
    const bool tcp_fine = r.outcome == close_outcome::clean || r.outcome == close_outcome::closed ||
                          r.outcome == close_outcome::aborted;
    // A truncation is a FIN seen before anything after it: a reset that followed (most often
    // the peer's kernel answering the alert OpenSSL sent about the truncation, after the peer
    // closed) does not undo it, and the truncation is what the application must know.
    const bool reset_after_truncation =
        r.outcome == close_outcome::peer_reset && tls_error_ == errc::tls_truncated &&
        !allow_unclean_eof_;  // there the FIN was an EOF, and the reset stays the news
    if (tls_error_ && (tcp_fine || reset_after_truncation)) {
        const bool truncated = tls_error_ == errc::tls_truncated;
        r.outcome = truncated && !allow_unclean_eof_ ? close_outcome::tls_truncated
                    : truncated                      ? close_outcome::closed
                                                     : close_outcome::tls_error;
        r.error = tls_error_;
    } else if (r.outcome == close_outcome::clean && !(our_notify_ && peer_notify_)) {
        r.outcome = close_outcome::closed;  // clean needs close_notify both ways
    }
}

close_report tls_stream::close() noexcept {
    if (!sock_.is_open()) return {};
    (void)queue_close_notify(deadline::at(clock::now()));  // best effort, never waits
    close_report r = sock_.close();
    fill_report(r);
    return r;
}

close_report tls_stream::abort() noexcept {
    if (!sock_.is_open()) return {};
    close_report r = sock_.abort();
    fill_report(r);
    return r;
}

close_report tls_stream::close_gracefully(const tls_close_options& opts) noexcept {
    if (!sock_.is_open()) {
        close_report r;
        r.method = close_method::graceful;
        return r;
    }
    const auto started = clock::now();
    const deadline until = deadline::at(started + opts.timeout);
    const std::uint64_t received_before = sock_.bytes_received();
    // Our bounds: abort (RST), and say which bound it was.
    auto bounded = [&](close_outcome o, errc why) {
        close_report r = sock_.abort();
        r.method = close_method::graceful;
        r.outcome = o;
        r.error = make_error_code(why);
        r.bytes_drained += sock_.bytes_received() - received_before;
        r.bytes_received = received_before;
        r.close_duration = clock::now() - started;
        fill_report(r);
        return r;
    };
    if (established_ && !tls_error_) {
        (void)queue_close_notify(until);
        (void)sock_.shutdown(shut::write);
        // Read and discard (TLS 1.3 lets the peer keep sending after our close_notify) until
        // its close_notify, its FIN, an error or our bounds.
        char scratch[16384];
        while (!peer_notify_ && !tls_error_ && !write_error_) {
            std::error_code ec;
            const int n = read_some(scratch, sizeof scratch, until, ec);
            if (n > 0) {
                // The cap counts TCP bytes (records), like the report's bytes_drained.
                if (sock_.bytes_received() - received_before > opts.drain_limit) {
                    return bounded(close_outcome::drain_limit, errc::drain_limit);
                }
                continue;
            }
            if (n == 0) break;
            if (ec == errc::timed_out) {
                wait_ = close_notify_wait::deadline;
                return bounded(close_outcome::timed_out, errc::timed_out);
            }
            break;  // truncation, protocol error, reset: the socket's close judges the rest
        }
        if (peer_notify_) {
            wait_ = close_notify_wait::received;
        } else if (tls_error_ == errc::tls_truncated) {
            wait_ = opts.wait_for_peer_close_notify ? close_notify_wait::peer_fin
                                                    : close_notify_wait::not_waited;
            if (!opts.wait_for_peer_close_notify) {
                tls_error_ = {};  // asked not to need it: `closed`, not truncated
                detail_ =
                    "the peer ended TCP without answering our close_notify "
                    "(wait_for_peer_close_notify = false)";
            }
        }
    } else if (tls_error_ == errc::tls_truncated) {
        wait_ = close_notify_wait::peer_fin;
    }
    close_options tcp = opts;
    tcp.timeout = std::max<clock::duration>(until.remaining(), clock::duration::zero());
    const std::uint64_t tcp_drained = sock_.bytes_received() - received_before;
    tcp.drain_limit = opts.drain_limit > tcp_drained ? opts.drain_limit - tcp_drained : 0;
    close_report r = sock_.close_gracefully(tcp);
    // The records read while waiting for close_notify were drained, not received.
    r.bytes_drained += tcp_drained;
    r.bytes_received -= tcp_drained;
    r.close_duration = clock::now() - started;
    fill_report(r);
    return r;
}

}  // namespace orderly
