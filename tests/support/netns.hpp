#pragma once
// Two private network namespaces joined by a veth pair, for fault-injection tests: partitions,
// injected resets and packet loss made with nftables inside one namespace, never on the host.
//
//   namespace A (addr .1/30, veth "o-a")  <--veth-->  namespace B (addr .2/30, veth "o-b")
//
// Each end also gets an IPv6 address (a /64 of fd00::/8, no duplicate detection) when the
// kernel has IPv6; has_ipv6() says whether it does.
//
// A socket keeps the namespace it was created in, so a test creates the listener inside A and
// the client inside B from one thread (`in(side::a, ...)`), and threads that merely use those
// sockets (the event loops of a server, a peer thread) need not enter any namespace.
//
// Names carry the pid (`orderly-f-<pid>-<n>-a`), so two test processes never collide, and a
// namespace left behind by a process that died (a crashed or killed test) is deleted by the next
// fixture that starts. Creating namespaces needs CAP_SYS_ADMIN: without it `not_permitted()` says
// why and the test skips; any later failure is a real failure (`error()`).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orderly/net/endpoint.hpp"

namespace orderly::test {

enum class side { a, b };

// Runs `argv` (argv[0] looked up in PATH) with `input` on stdin, collects stdout and stderr, and
// kills it once `timeout` has passed. `status` is the exit code, 128+signal when killed by one,
// -1 when it could not be started.
struct process_result {
    int status = -1;
    bool timed_out = false;  // killed because it outlived the timeout
    std::string out;
    std::string err;
    std::chrono::steady_clock::duration took{0};  // from the start to the exit
    std::chrono::steady_clock::time_point ended_at;
};
process_result run_process(const std::vector<std::string>& argv, std::string_view input = {},
                           std::chrono::steady_clock::duration timeout = std::chrono::seconds(10));

// A child process whose stdin the test controls (a pipe it may write to and close, or a file)
// while it runs, with stdout and stderr collected by wait(). Every wait is bounded; the
// destructor kills and reaps a child that is still running and closes every descriptor.
class child_process {
  public:
    struct options {
        std::string stdin_file;   // read stdin from this file; empty: a pipe (write_stdin())
        std::string stdout_file;  // write stdout here; empty: collected into result.out
    };
    child_process(const std::vector<std::string>& argv, const options& opts);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    [[nodiscard]] bool started() const noexcept { return pid_ > 0; }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    // Writes all of `data` to the stdin pipe (blocking; false when the pipe is gone).
    bool write_stdin(std::string_view data);
    void close_stdin() noexcept;
    // Waits for the exit, at most `timeout` (then SIGKILL); `took` counts from the start.
    process_result wait(std::chrono::steady_clock::duration timeout);

  private:
    int pid_ = -1;
    int stdin_w_ = -1;
    int stdout_r_ = -1;
    int stderr_r_ = -1;
    std::chrono::steady_clock::time_point started_at_;
    std::string error_;
};

class netns_pair {
  public:
    netns_pair();
    ~netns_pair();  // deletes both namespaces (and with them the veth pair and the rules)
    netns_pair(const netns_pair&) = delete;
    netns_pair& operator=(const netns_pair&) = delete;

    // Ready to use. Otherwise either not_permitted() (skip) or error() (fail) says why.
    [[nodiscard]] bool ready() const noexcept { return ready_; }
    [[nodiscard]] bool not_permitted() const noexcept { return !reason_skip_.empty(); }
    [[nodiscard]] const std::string& skip_reason() const noexcept { return reason_skip_; }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }

    [[nodiscard]] const std::string& name(side s) const noexcept {
        return s == side::a ? ns_a_ : ns_b_;
    }
    // The address of that side's veth end, e.g. 10.1.2.5:port.
    [[nodiscard]] endpoint address(side s, std::uint16_t port = 0) const;
    // Its IPv6 address, e.g. [fd6f:a12:345::1]:port (only when has_ipv6()).
    [[nodiscard]] endpoint address6(side s, std::uint16_t port = 0) const;
    [[nodiscard]] bool has_ipv6() const noexcept { return ipv6_; }

    // Runs `fn` with the calling thread inside that namespace and returns its result; the thread
    // goes back to its own namespace afterwards, even when fn throws.
    template <class F>
    auto in(side s, F&& fn) -> decltype(fn()) {
        const scoped_enter guard(*this, s);
        return fn();
    }

    // `ip netns exec <ns> argv...`: the command line that runs argv inside that namespace.
    [[nodiscard]] std::vector<std::string> exec_argv(side s,
                                                     const std::vector<std::string>& argv) const;

    // Faults, as nftables rules on that side's veth (each replaces the previous one there):
    // partition: drop every packet in both directions;
    // reset: answer every arriving TCP segment with RST (`reject with tcp reset`);
    // loss: drop `percent` % of the packets in each direction, at random;
    // heal: remove the rules. Each returns false (and records error()) when nft failed.
    bool partition(side s);
    bool reset(side s);
    bool loss(side s, unsigned percent);
    // black_hole: drop every TCP SYN arriving at these addresses (same port too), so connects
    // to them hang in SYN_SENT while everything else goes through.
    bool black_hole(side s, const std::vector<endpoint>& to);
    bool heal(side s);
    // Packets the current rules of that side have dropped or rejected so far (nft counters):
    // proof that a fault really bit. -1 when nft could not be read.
    long long fault_hits(side s);

  private:
    class scoped_enter {
      public:
        scoped_enter(const netns_pair& net, side s);
        ~scoped_enter();
        scoped_enter(const scoped_enter&) = delete;
        scoped_enter& operator=(const scoped_enter&) = delete;

      private:
        int home_ = -1;
    };

    bool run(const std::vector<std::string>& argv, std::string_view input = {});
    bool apply_rules(side s, const std::string& rules);
    [[nodiscard]] std::string veth(side s) const { return s == side::a ? "o-a" : "o-b"; }
    [[nodiscard]] std::string ipv6_text(side s) const;

    std::string ns_a_;
    std::string ns_b_;
    std::uint32_t subnet_ = 0;  // host order, the /30's network address
    bool created_a_ = false;
    bool created_b_ = false;
    bool ready_ = false;
    bool ipv6_ = false;
    std::string reason_skip_;
    std::string error_;
};

// Where the `orderly` binary is: $ORDERLY_BIN, else tools/orderly/orderly next to the test
// binary's build tree (<build>/tests/<exe> -> <build>/tools/orderly/orderly). Empty if neither.
std::string orderly_binary();

}  // namespace orderly::test
