// connection over a stream_filter (TLS): ciphertext from the backend goes into the filter,
// plaintext out of it goes to on_data; the application's writes go through the filter and its
// ciphertext to the backend. The end stays the end_machine's: the peer's close_notify is its
// end of sending (peer_end), the TCP FIN after it one more fact, a FIN without it a truncation.
// The event layer does not link OpenSSL: the filter is an interface (orderly/net/stream_filter).

#include "orderly/core/errc.hpp"
#include "orderly/event/connection.hpp"

namespace orderly {

// The report's counts are TCP bytes, as tls_stream's are (its report is its socket's): received
// and drained count ciphertext, and the drain cap bounds what the peer makes us read.
void connection::filter_in(std::span<const std::byte> ciphertext) {
    end_.read_progress(loop_->now());
    if (end_.is_closing()) {
        if (!end_.drain(ciphertext.size())) {
            end_with(close_outcome::drain_limit, close_method::graceful,
                     make_error_code(errc::drain_limit));
            return;
        }
    } else {
        bytes_received_ += ciphertext.size();
    }
    const bool held = filter_->plaintext_buffered() > 0;
    const bool handshaking = !filter_->handshake_done();
    const bool ok = filter_->feed(ciphertext);
    const bool finished = handshaking && filter_->handshake_done();
    if (finished) end_.handshake_finished();
    if (!send_ciphertext()) return;  // handshake flights, alerts, the held plaintext
    if (!ok) {
        end_filter_failure();
        return;
    }
    if (finished && callbacks_->on_open) {
        // The peer is authenticated and ALPN known. What was written before (held) is already
        // encrypted ahead of anything on_open writes.
        callbacks_->on_open(*this);
        if (!fd_) return;
    }
    if (held && filter_->plaintext_buffered() == 0) {
        after_output_progress();  // what waited for the handshake is out: FIN, on_drained
        if (!fd_) return;
    } else if (finished && end_.fin_due(!output_pending())) {
        send_fin();  // a shutdown_write() before the handshake, with nothing written
        if (!fd_) return;
    }
    pump_plaintext();
    // The handshake read through the pauses; now they hold again.
    if (finished && fd_) sync_transport();
}

void connection::pump_plaintext() {
    while (fd_ && end_.wants_read() && !end_.peer_eof_seen()) {
        const auto chunk = filter_->read_plaintext();
        if (chunk.empty()) break;
        // While closing it is drained (counted as TCP bytes in filter_in), not delivered.
        if (!end_.is_closing() && callbacks_->on_data) callbacks_->on_data(*this, chunk);
    }
    if (!fd_) return;
    if (filter_->failed()) {
        if (send_ciphertext()) end_filter_failure();
        return;
    }
    if (!send_ciphertext()) return;  // TLS 1.3 may answer a record (a key update)
    if (filter_->close_notify_received() && !end_.peer_eof_seen()) peer_end();
}

bool connection::send_ciphertext() {
    const auto c = filter_->take_ciphertext();
    if (c.empty()) return static_cast<bool>(fd_);
    return write_raw(c).has_value() && fd_;
}

bool connection::send_close_notify() {
    filter_->send_close_notify();
    return send_ciphertext();
}

result<void> connection::write_filtered(std::span<const std::byte> data) {
    const bool was_empty = !output_pending();
    if (!filter_->write_plaintext(data)) {
        (void)send_ciphertext();
        end_filter_failure();
        return fail(make_error_code(errc::tls_protocol_error));
    }
    if (!send_ciphertext()) {
        return fail(fd_ ? make_error_code(errc::connection_closed)
                        : make_error_code(errc::peer_reset));
    }
    if (filter_->plaintext_buffered() > 0) return after_queued(was_empty);  // handshake pending
    return {};
}

// The peer's TCP FIN. After its close_notify: the last fact of its direction. Without it: the
// stream may have been cut (an attacker or a crashed peer can send a FIN), so the end is
// tls_truncated, never clean, whatever else went right.
void connection::filter_tcp_eof() {
    if (!filter_->close_notify_received() && filter_->close_notify_sent() &&
        !opts_.wait_for_peer_close_notify) {
        filter_tcp_eof_unawaited();
        return;
    }
    if (filter_->close_notify_received()) {
        end_.tcp_eof();
        refresh_state();
        if (end_.both_done()) {
            settle();
        } else {
            reading_changed();  // nothing more to read: stop
        }
        return;
    }
    if (!filter_->handshake_done()) {
        release(close_outcome::tls_error, end_.method(),
                make_error_code(errc::tls_handshake_failed), false, nullptr);
        return;
    }
    release(close_outcome::tls_truncated, end_.method(), make_error_code(errc::tls_truncated),
            false, nullptr);
}

// wait_for_peer_close_notify = false: our close_notify went and the peer's FIN came without
// its own. The TCP end goes on as if the alert had come (our FIN, the acknowledgements), and
// filter_verdict makes a `clean` TCP end `closed`: the peer's last bytes are not vouched for.
void connection::filter_tcp_eof_unawaited() {
    end_.peer_eof(loop_->now());
    end_.tcp_eof();
    refresh_state();
    if (end_.both_done()) {
        settle();
    } else {
        reading_changed();  // nothing more to read; our FIN follows the output
    }
}

// Before the handshake there is no close_notify to send and no application data to drain: a
// graceful close (a server's stop, too) cannot be one, so it aborts and says why.
void connection::end_in_handshake() {
    release(close_outcome::aborted, close_method::graceful, make_error_code(errc::aborted), true,
            nullptr);
    if (report_ && report_->tls) {
        report_->tls->detail =
            "close_gracefully() during the TLS handshake (e.g. a server stop): aborted, there "
            "is no TLS end to send before the handshake finishes";
    }
}

void connection::end_filter_failure() {
    if (!fd_) return;
    release(close_outcome::tls_error, end_.method(),
            make_error_code(filter_->handshake_done() ? errc::tls_protocol_error
                                                      : errc::tls_handshake_failed),
            false, nullptr);
}

void connection::describe_filter(close_report& r) const {
    tls_close_info& t = r.tls.emplace();
    filter_->describe(t);
    if (t.close_notify_sent && !t.close_notify_received && end_.peer_tcp_eof_seen()) {
        t.wait = close_notify_wait::not_waited;  // filter_tcp_eof_unawaited
        if (t.detail.empty()) {
            t.detail =
                "the peer ended TCP without close_notify after ours "
                "(wait_for_peer_close_notify = false)";
        }
    } else if (r.outcome == close_outcome::tls_truncated) {
        t.wait = close_notify_wait::peer_fin;
        r.peer_eof = true;  // the TCP FIN was read
        if (t.detail.empty()) t.detail = "the peer ended TCP without close_notify";
    } else if (r.outcome == close_outcome::tls_error && !filter_->handshake_done() &&
               t.detail.empty()) {
        t.detail = "the peer closed TCP during the handshake";
    } else if (timeout_fired_ == timeout_kind::handshake) {
        t.detail = "the handshake did not finish within handshake_timeout";
    } else if (timeout_fired_ == timeout_kind::close && !t.close_notify_received) {
        t.wait = close_notify_wait::deadline;
    }
}

// The TCP end can be in order while the TLS end is not (our close_notify could not be made, or a
// close() came after the peer's close_notify but before its FIN): then it is `closed`, never
// `clean`, as tls_stream judges it.
void connection::filter_verdict(close_report& r) const {
    if (r.outcome != close_outcome::clean) return;
    if (!filter_->close_notify_sent() || !filter_->close_notify_received() ||
        !end_.peer_tcp_eof_seen()) {
        r.outcome = close_outcome::closed;
    }
}

}  // namespace orderly
