#pragma once
// The name lookups of a Happy Eyeballs race: AAAA and A side by side, each getaddrinfo(3) on a
// thread of its own. Internal: not installed.
//
// getaddrinfo blocks and cannot be cancelled, and the race must neither wait for a slow lookup
// once it has a winner nor outlive its deadline. So each lookup runs on its own std::thread that
// hands its answer to a callback and ends. The destructor joins the thread when the answer is
// already in (the usual case: hosts file, cache, a quick DNS reply; the thread is then at most
// a few instructions from its end) and detaches it otherwise. A detached thread lives until
// getaddrinfo returns, which the resolver bounds (resolv.conf `timeout` x `attempts`, 5 s x 2 by
// default), then delivers to its callback and ends: nothing waits for it, and it touches only
// what the callback owns, so a callback must hold shared state (shared_ptr), never a reference
// into a frame or object that may be gone by then.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/net/endpoint.hpp"

namespace orderly::detail {

using lookup_answer = result<std::vector<endpoint>, error_info>;

class lookup_thread {
  public:
    using callback = std::function<void(address_family, lookup_answer)>;
    // Starts resolve(host, port) for `family` (ipv6 or ipv4). `on_answer` runs once, on the
    // lookup thread (or, when no thread can be started, right here with that error).
    lookup_thread(std::string host, std::string port, address_family family, callback on_answer);
    ~lookup_thread();  // joins if answered, detaches otherwise; never waits for getaddrinfo
    lookup_thread(const lookup_thread&) = delete;
    lookup_thread& operator=(const lookup_thread&) = delete;

  private:
    std::shared_ptr<std::atomic<bool>> answered_ = std::make_shared<std::atomic<bool>>(false);
    std::thread thread_;
};

// What a connect target needs: addresses known without a lookup ("127.0.0.1:80", "[::1]:80",
// "unix:/path", a name the hosts file gives, see hosts_file.hpp) or a host and port for the
// lookups.
struct connect_target {
    std::vector<endpoint> literal;
    std::string host;
    std::string port;
};
// Errors: errc::address_parse naming the bad part ("host:port" shape, port range, scope id).
result<connect_target, error_info> parse_connect_target(std::string_view where);

}  // namespace orderly::detail
