#pragma once
// server: a listener and N loop threads (one per core by default). Every loop accepts for itself
// (the listener is watched by all loops with EPOLLEXCLUSIVE, so one wakes per connection and no
// connection crosses threads); a connection lives and dies on the loop that accepted it.
//
// Descriptor exhaustion (accept fails with EMFILE/ENFILE): the loop stops watching the listener,
// leaving new clients queued in the kernel's backlog, and resumes as soon as one of our
// connections releases its descriptor or after `accept_backoff`. It neither spins (level
// triggering would report the listener readable forever) nor drops anyone; it logs once per
// burst. The reserve-descriptor trick (accept with a spare descriptor and close at once, so the
// client is refused instead of waiting) is opt-in: it turns waiting clients into failed ones.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orderly/core/deadline.hpp"
#include "orderly/core/error_info.hpp"
#include "orderly/core/result.hpp"
#include "orderly/event/connection.hpp"
#include "orderly/event/registry.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/stream_filter.hpp"

namespace orderly {

struct server_options {
    unsigned threads = 0;  // loop threads; 0 = one per core
    loop_options loop;     // each loop's backend (automatic: io_uring where usable, else epoll)
    connection_options connection;
    listen_options listen;
    // How long a loop starved of descriptors waits before trying accept again, if no connection
    // of ours released one first.
    clock::duration accept_backoff = std::chrono::milliseconds(100);
    // Opt-in: keep one spare descriptor; on EMFILE close it, accept and close the newcomer (it
    // sees EOF at once), reopen it. Refuses clients instead of letting them wait.
    bool reserve_descriptor = false;
    // Bytes stop_gracefully() drains from each peer after our FIN before aborting it.
    std::uint64_t stop_drain_limit = 1U << 20;
    // One line per event worth a human's attention (descriptor exhaustion and recovery, CLOSE_WAIT
    // reports when the application has no on_close_wait). Called from loop threads; may be empty.
    std::function<void(std::string_view)> log;
    // TLS (or another filter) on every accepted connection: called once per connection on its
    // loop thread. For TLS: `opts.filter = orderly::tls_filter::server_factory(ctx)` (orderly::tls;
    // the event layer itself does not link OpenSSL). An error (OpenSSL out of memory) is logged and
    // that connection is closed. Empty: plain TCP. Over TLS every connection handshakes before
    // on_open (a failed handshake gets only on_closed).
    std::function<result<std::unique_ptr<stream_filter>, error_info>()> filter;
};

// What a stop did: every connection that ended from the moment the stop began.
struct stop_summary {
    std::array<std::uint64_t, close_outcome_count> outcomes{};  // indexed by close_outcome
    std::uint64_t connections = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_drained = 0;
    clock::duration took{0};
    bool deadline_reached = false;  // some connections had to be aborted

    [[nodiscard]] std::uint64_t count(close_outcome o) const noexcept {
        return outcomes[static_cast<std::size_t>(o)];
    }
    // "stopped in 12 ms: 500 connections (clean 500), sent 1.0 MiB, received ..., drained 0 B"
    [[nodiscard]] std::string to_string() const;
};

class server {
  public:
    // Listens on `at` (port 0 picks one), starts the loop threads and returns. `callbacks` are
    // shared by every connection. Errors: the listener's (bind, permissions, ...) or the errno
    // of creating a loop.
    static result<std::unique_ptr<server>, error_info> start(const endpoint& at,
                                                             connection_callbacks callbacks,
                                                             server_options opts = {});
    // The same on a listener the caller made (e.g. with orderly::listen("host:port")); opts.listen
    // is then unused. A Unix socket file stays where it is when the server ends.
    static result<std::unique_ptr<server>, error_info> start(listener l,
                                                             connection_callbacks callbacks,
                                                             server_options opts = {});
    ~server();  // stop_now() if still running
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    [[nodiscard]] const endpoint& local_endpoint() const noexcept;
    [[nodiscard]] std::size_t thread_count() const noexcept;

    // Stop accepting; each connection stops taking input, flushes what it owes, sends FIN, drains
    // the peer to EOF and closes. Blocks until all have closed or `until`; whatever remains then
    // is aborted (and counted so). Over TLS: close_notify after the output, then FIN, and the
    // drain to the peer's close_notify and FIN (connection_options::wait_for_peer_close_notify
    // says whether a FIN without it is tls_truncated or closed); a connection still handshaking
    // is aborted at once (outcome aborted, tls->detail says why). Joins the threads. Second and
    // later calls return an empty summary once the first has joined the threads; a stop_now() while
    // a graceful stop waits aborts what remains at once. Not from a loop thread (a callback): it
    // joins them.
    stop_summary stop_gracefully(deadline until);
    // Abort every connection (RST) and join the threads.
    stop_summary stop_now();

    // Thread-safe diagnostics. counts(): live connections by state, summed over the loops.
    [[nodiscard]] state_counts counts() const noexcept;
    // A copy of every live connection's info; blocks until each loop has answered (or 1 s).
    [[nodiscard]] std::vector<connection_info> connections() const;
    // Times accepting paused for descriptor exhaustion, and bursts logged.
    [[nodiscard]] std::uint64_t accept_pauses() const noexcept;
    [[nodiscard]] std::uint64_t accepted() const noexcept;

    struct impl;

  private:
    explicit server(std::unique_ptr<impl> p) noexcept;
    std::unique_ptr<impl> impl_;
};

}  // namespace orderly
