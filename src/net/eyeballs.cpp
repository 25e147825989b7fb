#include "orderly/net/eyeballs.hpp"

#include <algorithm>
#include <cctype>

#include "json_text.hpp"
#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

using detail::ms_text;
using detail::reason_text;

// RFC 8305 §4: which queue the next address comes from. The first `count` picks take the
// preferred family, then the families alternate; a family that runs out leaves the others.
template <class Queue>
std::size_t choose_queue(const std::vector<Queue>& queues, std::size_t picks, unsigned count,
                         address_family preferred, address_family last) {
    std::size_t fallback = queues.size();
    for (std::size_t i = 0; i < queues.size(); ++i) {
        if (queues[i].pending.empty()) continue;
        if (picks < count) {
            if (queues[i].family == preferred) return i;
        } else if (queues[i].family != last) {
            return i;
        }
        if (fallback == queues.size()) fallback = i;
    }
    return fallback;
}

struct plain_queue {
    address_family family;
    std::vector<endpoint> pending;
};

std::string_view family_lookup_name(address_family f) noexcept {
    return f == address_family::ipv6 ? "AAAA" : "A";
}

}  // namespace

result<void, error_info> check_connect_options(const connect_options& opts) {
    const auto bad = make_error_code(errc::invalid_argument);
    if (opts.attempt_delay != clock::duration::zero() &&
        (opts.attempt_delay < min_attempt_delay || opts.attempt_delay > max_attempt_delay)) {
        return fail(bad, "attempt delay " + ms_text(opts.attempt_delay) +
                             " is outside 100 ms to 2 s (RFC 8305); use 0 to try one address "
                             "at a time");
    }
    if (opts.first_family_count == 0) {
        return fail(bad, "first address family count must be at least 1");
    }
    if (opts.resolution_delay < clock::duration::zero() ||
        opts.resolution_delay > max_attempt_delay) {
        return fail(bad,
                    "resolution delay " + ms_text(opts.resolution_delay) + " is outside 0 to 2 s");
    }
    return {};
}

std::vector<endpoint> interleave_families(std::span<const endpoint> addresses,
                                          unsigned first_family_count) {
    std::vector<plain_queue> queues;
    std::size_t total = 0;
    for (const endpoint& e : addresses) {
        auto q = std::find_if(queues.begin(), queues.end(),
                              [&](const plain_queue& p) { return p.family == e.family(); });
        if (q == queues.end()) q = queues.insert(queues.end(), {e.family(), {}});
        if (std::find(q->pending.begin(), q->pending.end(), e) != q->pending.end()) continue;
        q->pending.push_back(e);
        ++total;
    }
    std::vector<endpoint> out;
    out.reserve(total);
    const address_family preferred = queues.empty() ? address_family::none : queues[0].family;
    address_family last = address_family::none;
    for (auto& q : queues)
        std::reverse(q.pending.begin(), q.pending.end());  // pop from the back
    while (out.size() < total) {
        auto& q = queues[choose_queue(queues, out.size(), first_family_count, preferred, last)];
        out.push_back(q.pending.back());
        q.pending.pop_back();
        last = q.family;
    }
    return out;
}

eyeballs::eyeballs(const connect_options& opts, clock::time_point start, std::string target)
    : opts_(opts), start_(start), target_(std::move(target)) {
    deadline_ = opts.timeout >= clock::time_point::max() - start ? clock::time_point::max()
                                                                 : start + opts.timeout;
}

bool eyeballs::known(const endpoint& e) const {
    for (const auto& q : queues_) {
        if (std::find(q.pending.begin(), q.pending.end(), e) != q.pending.end()) return true;
    }
    return std::any_of(report_.attempts.begin(), report_.attempts.end(),
                       [&](const connect_attempt& a) { return a.to == e; });
}

void eyeballs::enqueue(const endpoint& e, bool looked_up) {
    if (known(e)) return;
    auto q = std::find_if(queues_.begin(), queues_.end(),
                          [&](const family_queue& f) { return f.family == e.family(); });
    if (q == queues_.end()) {
        // A looked-up IPv6 address goes first (RFC 6724's default precedence) when it arrives
        // before the race has begun, even if the A answer was there first. A given list keeps
        // the caller's order.
        const bool front = looked_up && e.family() == address_family::ipv6 && picks_ == 0;
        q = queues_.insert(front ? queues_.begin() : queues_.end(), {e.family(), {}});
    }
    q->pending.push_back(e);
}

bool eyeballs::has_queued() const noexcept {
    return std::any_of(queues_.begin(), queues_.end(),
                       [](const family_queue& q) { return !q.pending.empty(); });
}

void eyeballs::add_addresses(std::span<const endpoint> addresses, clock::time_point now) {
    if (done_) return;
    for (const endpoint& e : addresses)
        enqueue(e, false);
    finish_if_exhausted(now);
}

void eyeballs::expect_answer(address_family family) {
    awaiting_.push_back(family);
}

void eyeballs::answer(address_family family, result<std::vector<endpoint>, error_info> addresses,
                      clock::time_point now) {
    if (auto it = std::find(awaiting_.begin(), awaiting_.end(), family); it != awaiting_.end()) {
        awaiting_.erase(it);
    }
    if (done_) return;
    if (!addresses) {
        lookup_errors_.push_back(addresses.error());
    } else {
        for (const endpoint& e : *addresses)
            enqueue(e, true);
        if (!any_answer_ && !addresses->empty()) {
            any_answer_ = true;
            report_.first_answer = now - start_;
        }
    }
    finish_if_exhausted(now);
}

bool eyeballs::awaiting_aaaa_only() const noexcept {
    if (std::find(awaiting_.begin(), awaiting_.end(), address_family::ipv6) == awaiting_.end()) {
        return false;
    }
    return std::none_of(queues_.begin(), queues_.end(), [](const family_queue& q) {
        return q.family == address_family::ipv6 && !q.pending.empty();
    });
}

clock::time_point eyeballs::hold_until() const noexcept {
    return start_ + report_.first_answer + opts_.resolution_delay;
}

endpoint eyeballs::pick() {
    if (picks_ == 0) {
        for (const auto& q : queues_) {
            if (!q.pending.empty()) {
                preferred_ = q.family;
                break;
            }
        }
    }
    auto& q =
        queues_[choose_queue(queues_, picks_, opts_.first_family_count, preferred_, last_family_)];
    endpoint e = q.pending.front();
    q.pending.erase(q.pending.begin());
    last_family_ = q.family;
    ++picks_;
    return e;
}

std::optional<std::size_t> eyeballs::next(clock::time_point now) {
    if (done_) return std::nullopt;
    if (now >= deadline_) {
        end_in_flight(attempt_outcome::timed_out, now);
        finish_failed(make_error_code(errc::timed_out), {}, now);
        return std::nullopt;
    }
    if (!has_queued()) {
        finish_if_exhausted(now);
        return std::nullopt;
    }
    // RFC 8305 §3: an A answer that came first waits a little for AAAA.
    if (picks_ == 0 && awaiting_aaaa_only() && now < hold_until()) return std::nullopt;
    if (in_flight_ > 0 && !failure_since_last_start_) {
        if (opts_.attempt_delay == clock::duration::zero()) return std::nullopt;
        if (now < last_start_ + opts_.attempt_delay) return std::nullopt;
    }
    connect_attempt a;
    a.to = pick();
    a.started = now - start_;
    report_.attempts.push_back(a);
    ++in_flight_;
    last_start_ = now;
    failure_since_last_start_ = false;
    return report_.attempts.size() - 1;
}

clock::time_point eyeballs::wake_at() const noexcept {
    if (done_) return clock::time_point::max();
    clock::time_point t = deadline_;
    if (!has_queued()) return t;
    if (picks_ == 0) return awaiting_aaaa_only() ? std::min(t, hold_until()) : start_;
    if (in_flight_ == 0 || failure_since_last_start_) return start_;
    if (opts_.attempt_delay == clock::duration::zero()) return t;
    return std::min(t, last_start_ + opts_.attempt_delay);
}

void eyeballs::failed(std::size_t i, std::error_code error, clock::time_point now) {
    if (i >= report_.attempts.size()) return;
    connect_attempt& a = report_.attempts[i];
    if (a.outcome != attempt_outcome::in_flight) return;
    a.outcome = attempt_outcome::failed;
    a.error = error;
    a.ended = now - start_;
    --in_flight_;
    failure_since_last_start_ = true;
    finish_if_exhausted(now);
}

bool eyeballs::connected(std::size_t i, clock::time_point now) {
    if (i >= report_.attempts.size()) return false;
    connect_attempt& a = report_.attempts[i];
    if (done_) {
        // The same batch of events held a second completion: it lost, and says so.
        if (report_.winner && a.outcome == attempt_outcome::cancelled) {
            a.outcome = attempt_outcome::lost_tie;
            a.ended = now - start_;
        }
        return false;
    }
    if (a.outcome != attempt_outcome::in_flight) return false;
    a.outcome = attempt_outcome::connected;
    a.ended = now - start_;
    --in_flight_;
    report_.winner = i;
    end_in_flight(attempt_outcome::cancelled, now);
    done_ = true;
    report_.took = now - start_;
    for (const auto& q : queues_)
        report_.untried += q.pending.size();
    return true;
}

void eyeballs::stop(clock::time_point now) {
    if (done_) return;
    end_in_flight(attempt_outcome::cancelled, now);
    finish_failed(make_error_code(errc::aborted), "connect to " + target_ + ": cancelled", now);
}

void eyeballs::end_in_flight(attempt_outcome outcome, clock::time_point now) {
    for (connect_attempt& a : report_.attempts) {
        if (a.outcome != attempt_outcome::in_flight) continue;
        a.outcome = outcome;
        a.ended = now - start_;
    }
    in_flight_ = 0;
}

void eyeballs::finish_if_exhausted(clock::time_point now) {
    if (done_ || has_queued() || in_flight_ > 0 || !awaiting_.empty()) return;
    if (!report_.attempts.empty()) {
        // What a server answered says more than a missing route: a refusal, if any, else the
        // first (most preferred) address's error.
        std::error_code code = report_.attempts.front().error;
        for (const connect_attempt& a : report_.attempts) {
            if (a.error == std::errc::connection_refused ||
                a.error == std::errc::connection_reset) {
                code = a.error;
                break;
            }
        }
        finish_failed(code, {}, now);
        return;
    }
    if (lookup_errors_.empty()) {
        finish_failed(make_error_code(errc::invalid_argument),
                      "connect to " + target_ + ": no address to connect to", now);
        return;
    }
    // Both lookups failed: one message when they agree, both reasons when they differ.
    std::string detail = lookup_errors_.front().message();
    for (std::size_t i = 1; i < lookup_errors_.size(); ++i) {
        const std::string other = lookup_errors_[i].message();
        if (other != detail) detail += "; " + other;
    }
    finish_failed(lookup_errors_.front().code, detail, now);
}

void eyeballs::finish_failed(std::error_code code, std::string detail, clock::time_point now) {
    done_ = true;
    report_.took = now - start_;
    report_.untried = 0;
    for (const auto& q : queues_)
        report_.untried += q.pending.size();
    if (detail.empty()) {
        detail = "connect to " + target_ + ": ";
        const auto& attempts = report_.attempts;
        if (attempts.empty()) {
            detail +=
                "timed out after " + ms_text(std::max(opts_.timeout, clock::duration{})) +
                (awaiting_.empty() ? " before the first attempt" : " before any address was known");
        } else if (attempts.size() == 1 && report_.untried == 0 &&
                   attempts[0].to.to_string() == target_) {
            detail += attempts[0].outcome == attempt_outcome::failed
                          ? reason_text(attempts[0].error)
                          : "timed out";
        } else {
            detail += report_.failures();
        }
        for (address_family f : awaiting_) {
            detail += "; the ";
            detail += family_lookup_name(f);
            detail += " lookup had not answered";
        }
    }
    error_ = error_info{code, std::move(detail)};
}

}  // namespace orderly
