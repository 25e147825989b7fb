#include "orderly/net/connect.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "connect_attempt.hpp"
#include "lookup_thread.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/net/resolve.hpp"

namespace orderly {
namespace {

// Where the lookup threads leave their answers for the connecting thread, which polls `wake`.
// Shared with the threads, so that one still running after connect() returned writes into
// this box and not into a gone frame; `wake` is closed by connect() before it returns, after
// which late answers are dropped.
struct answer_box {
    std::mutex mutex;
    std::vector<std::pair<address_family, detail::lookup_answer>> answers;  // guarded by mutex
    unique_fd wake;                                                         // guarded by mutex
};

// The AAAA and A lookups of one connect.
class lookups {
  public:
    lookups(const detail::connect_target& t, eyeballs& race)
        : box_(std::make_shared<answer_box>()) {
        box_->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!box_->wake) {
            const auto err = errno_code(errno);
            for (address_family f : {address_family::ipv6, address_family::ipv4}) {
                race.expect_answer(f);
                race.answer(f,
                            fail(err, "cannot look up '" + t.host + "': eventfd: " + err.message()),
                            clock::now());
            }
            return;
        }
        wake_fd_ = box_->wake.get();
        for (address_family f : {address_family::ipv6, address_family::ipv4}) {
            race.expect_answer(f);
            threads_.push_back(std::make_unique<detail::lookup_thread>(
                t.host, t.port, f, [box = box_](address_family fam, detail::lookup_answer a) {
                    const std::lock_guard lock(box->mutex);
                    if (!box->wake) return;  // connect() has returned
                    box->answers.emplace_back(fam, std::move(a));
                    const std::uint64_t one = 1;
                    [[maybe_unused]] const auto n = ::write(box->wake.get(), &one, sizeof one);
                }));
        }
    }
    ~lookups() {
        {
            const std::lock_guard lock(box_->mutex);
            box_->wake.reset();
            box_->answers.clear();
        }
        threads_.clear();  // joins the threads that answered, detaches the others
    }
    lookups(const lookups&) = delete;
    lookups& operator=(const lookups&) = delete;

    // The eventfd to poll, -1 when there is none.
    [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }

    void deliver(eyeballs& race) {
        std::vector<std::pair<address_family, detail::lookup_answer>> got;
        {
            const std::lock_guard lock(box_->mutex);
            std::uint64_t value = 0;
            [[maybe_unused]] const auto n = ::read(box_->wake.get(), &value, sizeof value);
            got.swap(box_->answers);
        }
        for (auto& [family, answer] : got)
            race.answer(family, std::move(answer), clock::now());
    }

  private:
    std::shared_ptr<answer_box> box_;
    std::vector<std::unique_ptr<detail::lookup_thread>> threads_;
    int wake_fd_ = -1;
};

struct live_attempt {
    std::size_t index;
    unique_fd fd;
};

// The race with poll(2): until the schedule says done, start what is due, then wait for a
// socket, a lookup answer or the schedule's next time.
result<stream_socket, error_info> run_race(eyeballs& race, lookups* names, connect_report* report) {
    std::vector<live_attempt> live;
    std::optional<live_attempt> won;
    std::vector<pollfd> fds;
    std::optional<error_info> poll_error;
    auto settle = [&](live_attempt& a, std::error_code err, clock::time_point now) {
        if (err) {
            race.failed(a.index, err, now);
            a.fd.reset();
        } else if (race.connected(a.index, now)) {
            won = std::move(a);
        } else {
            detail::abort_attempt(a.fd);
        }
    };
    while (!race.done()) {
        auto now = clock::now();
        while (auto i = race.next(now)) {
            auto s = detail::start_attempt(race.address(*i));
            live_attempt a{*i, {}};
            if (!s) {
                settle(a, s.error(), now);
            } else if (s->connected) {
                a.fd = std::move(s->fd);
                settle(a, {}, now);
            } else {
                a.fd = std::move(s->fd);
                live.push_back(std::move(a));
            }
            now = clock::now();
        }
        if (race.done()) break;
        fds.clear();
        const bool poll_names = names != nullptr && names->wake_fd() >= 0;
        if (poll_names) fds.push_back({names->wake_fd(), POLLIN, 0});
        for (const auto& a : live)
            fds.push_back({a.fd.get(), POLLOUT, 0});
        const int n =
            ::poll(fds.data(), fds.size(), deadline::at(race.wake_at()).poll_timeout_ms());
        if (n < 0 && errno != EINTR) {
            const auto err = errno_code(errno);  // ENOMEM: nothing to wait with
            race.stop(clock::now());
            poll_error = error_info{err, "connect: poll: " + err.message()};
            break;
        }
        if (n <= 0) continue;
        now = clock::now();
        std::size_t at = 0;
        if (poll_names) {
            if (fds[0].revents != 0) names->deliver(race);
            at = 1;
        }
        // Every completion of this batch is reported, so a second winner is known as a lost tie.
        for (std::size_t k = 0; k < live.size(); ++k) {
            if (fds[at + k].revents == 0) continue;
            settle(live[k], detail::attempt_result(live[k].fd.get()), now);
        }
        std::erase_if(live, [](const live_attempt& a) { return !a.fd; });
    }
    const auto end = clock::now();
    for (auto& a : live) {
        // Connected in the same instant as the winner: recorded as a lost tie, then reset.
        if (detail::attempt_connected(a.fd.get())) (void)race.connected(a.index, end);
        detail::abort_attempt(a.fd);  // cancelled by the winner, or timed out
    }
    if (report != nullptr) *report = race.report();
    if (!won) return failure{poll_error ? *poll_error : race.error()};
    return stream_socket(std::move(won->fd), race.address(won->index));
}

}  // namespace

result<stream_socket, error_info> connect(std::string_view where, const connect_options& opts,
                                          connect_report* report) {
    if (auto ok = check_connect_options(opts); !ok) return failure{ok.error()};
    auto target = detail::parse_connect_target(where);
    if (!target) return failure{target.error()};
    eyeballs race(opts, clock::now(), std::string(where));
    if (!target->literal.empty()) {
        race.add_addresses(target->literal, clock::now());
        return run_race(race, nullptr, report);
    }
    lookups names(*target, race);
    return run_race(race, &names, report);
}

result<stream_socket, error_info> connect(std::string_view where, clock::duration timeout) {
    connect_options opts;
    opts.timeout = timeout;
    return connect(where, opts);
}

result<stream_socket, error_info> connect(std::span<const endpoint> to, const connect_options& opts,
                                          connect_report* report) {
    if (auto ok = check_connect_options(opts); !ok) return failure{ok.error()};
    const std::string target =
        to.size() == 1 ? to.front().to_string() : std::to_string(to.size()) + " addresses";
    eyeballs race(opts, clock::now(), target);
    race.add_addresses(to, clock::now());
    return run_race(race, nullptr, report);
}

result<listener, error_info> listen(std::string_view where, const listen_options& opts) {
    resolve_options ro;
    ro.passive = true;
    // "*:port" is the common spelling of "any address"; getaddrinfo wants an empty host for it.
    if (where.starts_with("*:")) where.remove_prefix(1);
    auto addrs = resolve(where, ro);
    if (!addrs) return fail(addrs.error().code, addrs.error().detail);
    error_info last{make_error_code(errc::resolve),
                    "'" + std::string(where) + "' resolved to no address"};
    for (const endpoint& ep : *addrs) {
        auto l = listener::listen(ep, opts);
        if (l) return std::move(*l);
        last = l.error();
    }
    return fail(last.code, last.detail);
}

}  // namespace orderly
