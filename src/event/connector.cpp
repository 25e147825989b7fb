#include "orderly/event/connector.hpp"

#include <sys/epoll.h>

#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../net/connect_attempt.hpp"
#include "../net/lookup_thread.hpp"

namespace orderly {
namespace detail {

// One race on one loop. Lives (through self_) from connect() until the batch after the handler
// ran, so that a stale event of that batch still finds its attempt_io (loop.hpp's rule). Linked
// into the loop while racing, so that a loop destroyed first cancels it (handler once, with
// errc::aborted; every attempt's descriptor closed) instead of leaking it.
class connector final : public std::enable_shared_from_this<connector>, public loop_resource {
  public:
    connector(loop& lp, std::string target, const connect_options& opts,
              std::shared_ptr<const connection_callbacks> callbacks,
              const connection_options& conn_opts, connect_handler on_done)
        : lp_(lp),
          race_(opts, clock::now(), std::move(target)),
          opts_(opts),
          callbacks_(callbacks ? std::move(callbacks)
                               : std::make_shared<const connection_callbacks>()),
          conn_opts_(conn_opts),
          on_done_(std::move(on_done)) {}

    // Called once by connect(): `where` is the text or null for `list`.
    void begin(const std::string_view* where, std::span<const endpoint> list) {
        self_ = shared_from_this();
        lp_.link(this);
        starting_ = true;
        if (auto ok = check_connect_options(opts_); !ok) {
            finish(ok.error());
        } else if (where == nullptr) {
            race_.add_addresses(list, clock::now());
            advance();
        } else if (auto t = parse_connect_target(*where); !t) {
            finish(t.error());
        } else if (!t->literal.empty()) {
            race_.add_addresses(t->literal, clock::now());
            advance();
        } else {
            start_lookups(*t);
            advance();
        }
        starting_ = false;
    }

    void cancel() {
        if (finished_) return;
        race_.stop(clock::now());
        finish(std::nullopt);
    }
    [[nodiscard]] bool running() const noexcept { return !finished_; }

    void on_loop_destroyed() noexcept override { cancel(); }

  private:
    struct attempt_io final : io_handler {
        connector* owner = nullptr;
        std::size_t index = 0;
        unique_fd fd;
        bool watched = false;
        void on_io(std::uint32_t /*events*/) override { owner->on_attempt_io(*this); }
    };
    // What a lookup thread may touch: the loop to post to, until the race is over.
    struct post_box {
        std::mutex mutex;
        loop* lp = nullptr;  // guarded by mutex; null once the race is over
        std::weak_ptr<connector> target;
    };

    void start_lookups(const connect_target& t) {
        box_ = std::make_shared<post_box>();
        box_->lp = &lp_;
        box_->target = weak_from_this();
        for (address_family f : {address_family::ipv6, address_family::ipv4}) {
            race_.expect_answer(f);
            lookups_.push_back(std::make_unique<lookup_thread>(
                t.host, t.port, f, [box = box_](address_family fam, lookup_answer a) {
                    const std::lock_guard lock(box->mutex);
                    if (box->lp == nullptr) return;
                    box->lp->post([target = box->target, fam, a = std::move(a)]() mutable {
                        if (auto c = target.lock()) c->on_answer(fam, std::move(a));
                    });
                }));
        }
    }

    void on_answer(address_family family, lookup_answer a) {
        if (finished_) return;
        race_.answer(family, std::move(a), clock::now());
        advance();
    }

    // Starts what is due, then either finishes or arms the timer for the next thing due.
    void advance() {
        if (finished_) return;
        auto now = clock::now();
        while (auto i = race_.next(now)) {
            auto io = std::make_unique<attempt_io>();
            io->owner = this;
            io->index = *i;
            attempt_io& a = *io;
            attempts_.push_back(std::move(io));
            auto s = start_attempt(race_.address(*i));
            if (!s) {
                settle(a, s.error(), now);
            } else {
                a.fd = std::move(s->fd);
                if (s->connected) {
                    settle(a, {}, now);
                } else if (auto w = lp_.watch(a.fd.get(), EPOLLOUT, &a); !w) {
                    settle(a, w.error(), now);
                } else {
                    a.watched = true;
                }
            }
            now = clock::now();
        }
        if (race_.done()) {
            finish(std::nullopt);
            return;
        }
        arm_timer(race_.wake_at());
    }

    void arm_timer(clock::time_point at) {
        if (timer_ != 0 && at == timer_at_) return;
        if (timer_ != 0) lp_.cancel(timer_);
        timer_ = 0;
        timer_at_ = at;
        if (at == clock::time_point::max()) return;
        timer_ = lp_.run_at(at, [weak = weak_from_this()] {
            if (auto c = weak.lock()) {
                c->timer_ = 0;
                c->advance();
            }
        });
    }

    void on_attempt_io(attempt_io& a) {
        if (finished_ || !a.fd) return;  // a stale event after the race or the attempt ended
        settle(a, attempt_result(a.fd.get()), clock::now());
        advance();
    }

    void settle(attempt_io& a, std::error_code err, clock::time_point now) {
        if (a.watched) {
            lp_.unwatch(a.fd.get());
            a.watched = false;
        }
        if (err) {
            race_.failed(a.index, err, now);
            a.fd.reset();
        } else if (race_.connected(a.index, now)) {
            winner_ = std::move(a.fd);
        } else {
            abort_attempt(a.fd);
        }
    }

    void finish(std::optional<error_info> early) {
        if (finished_) return;
        finished_ = true;
        lp_.unlink(this);
        if (timer_ != 0) lp_.cancel(timer_);
        timer_ = 0;
        if (box_) {
            const std::lock_guard lock(box_->mutex);
            box_->lp = nullptr;  // late answers are dropped on their own thread
        }
        const auto now = clock::now();
        for (auto& a : attempts_) {
            if (!a->fd) continue;
            if (a->watched) lp_.unwatch(a->fd.get());
            a->watched = false;
            // Connected in the same instant as the winner: recorded as a lost tie, then reset.
            if (attempt_connected(a->fd.get())) (void)race_.connected(a->index, now);
            abort_attempt(a->fd);
        }
        result<connection_ptr, error_info> out = failure{early ? *early : race_.error()};
        if (winner_) {
            const endpoint peer = race_.address(*race_.winner());
            auto c = connection::adopt(lp_, std::move(winner_), callbacks_, conn_opts_, nullptr,
                                       &peer, nullptr, true);
            if (c) {
                out = std::move(*c);
            } else {
                out =
                    fail(c.error(), "connect to " + peer.to_string() +
                                        ": adopting the connected socket: " + c.error().message());
            }
        }
        auto done = std::move(on_done_);
        // Released after this batch: a later event of the batch may still name an attempt_io.
        lp_.defer([self = std::move(self_)] {});
        if (!done) return;
        if (starting_) {
            // The handler never runs inside connect().
            lp_.defer([done = std::move(done), out = std::move(out), report = race_.report()] {
                done(out, report);
            });
        } else {
            done(std::move(out), race_.report());
        }
    }

    loop& lp_;
    eyeballs race_;
    connect_options opts_;
    std::shared_ptr<const connection_callbacks> callbacks_;
    connection_options conn_opts_;
    connect_handler on_done_;

    std::vector<std::unique_ptr<attempt_io>> attempts_;
    unique_fd winner_;
    std::shared_ptr<post_box> box_;
    std::vector<std::unique_ptr<lookup_thread>> lookups_;
    timer_id timer_ = 0;
    clock::time_point timer_at_ = clock::time_point::max();
    std::shared_ptr<connector> self_;
    bool finished_ = false;
    bool starting_ = false;
};

}  // namespace detail

void pending_connect::cancel() {
    if (auto c = c_.lock()) c->cancel();
}

bool pending_connect::running() const {
    auto c = c_.lock();
    return c && c->running();
}

pending_connect connect(loop& lp, std::string_view where,
                        std::shared_ptr<const connection_callbacks> callbacks,
                        connect_handler on_done, const connect_options& opts,
                        const connection_options& conn_opts) {
    auto c = std::make_shared<detail::connector>(lp, std::string(where), opts, std::move(callbacks),
                                                 conn_opts, std::move(on_done));
    c->begin(&where, {});
    return pending_connect(c);
}

pending_connect connect(loop& lp, std::span<const endpoint> to,
                        std::shared_ptr<const connection_callbacks> callbacks,
                        connect_handler on_done, const connect_options& opts,
                        const connection_options& conn_opts) {
    auto c = std::make_shared<detail::connector>(
        lp, detail::list_target(to), opts, std::move(callbacks), conn_opts, std::move(on_done));
    c->begin(nullptr, to);
    return pending_connect(c);
}

}  // namespace orderly
