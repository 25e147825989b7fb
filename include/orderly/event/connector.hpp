#pragma once
// The event layer's connect: Happy Eyeballs (RFC 8305) on a loop, without blocking it. The same
// schedule as the blocking orderly::connect (orderly/net/eyeballs.hpp) drives non-blocking
// sockets watched for EPOLLOUT, one loop timer for the next attempt or the deadline, and the
// AAAA and A lookups on threads of their own whose answers come back through loop::post. The
// first attempt to connect is adopted as a `connection`; the others are closed at once.
//
// The coroutine async_connect (orderly/coro, not written yet) will be a thin awaitable over this
// connect: its awaiter calls it from await_suspend with a handler that stores the result and
// resumes the coroutine on the loop, and its cancellation calls pending_connect::cancel(). It
// will not have a schedule of its own.

#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "orderly/core/result.hpp"
#include "orderly/event/connection.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/eyeballs.hpp"

namespace orderly {

// Runs once on the loop thread: the adopted connection (its on_open has run) or why there is
// none (the same errors and texts as the blocking connect; errc::aborted after cancel()), and
// the record of the race either way.
using connect_handler =
    std::function<void(result<connection_ptr, error_info> conn, const connect_report& report)>;

namespace detail {
class connector;
}

// Names one connect in progress. Copyable; does not keep the connect alive (it runs to its end
// whether or not a handle is kept).
class pending_connect {
  public:
    pending_connect() = default;
    // Loop thread only. Ends the race now if it is still running: every attempt is closed, the
    // lookups are abandoned, and the handler runs (before cancel returns) with errc::aborted.
    void cancel();
    // Loop thread only. True until the handler has been called.
    [[nodiscard]] bool running() const;

    // Made by connect(); `c` is the event layer's own state of the race.
    explicit pending_connect(std::weak_ptr<detail::connector> c) : c_(std::move(c)) {}

  private:
    std::weak_ptr<detail::connector> c_;
};

// Starts connecting to "host:port", "[v6]:port" or "unix:/path" and returns at once; call on
// lp's thread (or before lp runs). The handler never runs inside this call, even when the
// address does not parse. The winner is adopted with `callbacks` and `conn_opts`. It keeps
// itself alive until it ends; a loop destroyed first cancels it (as cancel() does: every attempt
// closed, the handler run once with errc::aborted from ~loop()).
pending_connect connect(loop& lp, std::string_view where,
                        std::shared_ptr<const connection_callbacks> callbacks,
                        connect_handler on_done, const connect_options& opts = {},
                        const connection_options& conn_opts = {});
// Races the given addresses (the first one's family first); no lookup.
pending_connect connect(loop& lp, std::span<const endpoint> to,
                        std::shared_ptr<const connection_callbacks> callbacks,
                        connect_handler on_done, const connect_options& opts = {},
                        const connection_options& conn_opts = {});

}  // namespace orderly
