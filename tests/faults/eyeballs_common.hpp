#pragma once
// Shared by the Happy Eyeballs fault tests: one "server" in namespace A listening on its IPv6 and
// its IPv4 address with the same port (what a dual-stack name points to), the sockets a
// namespace holds (ss), an event loop running inside namespace B, and the connect_probe child.

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "fault_common.hpp"
#include "orderly/event/loop.hpp"
#include "orderly/net/eyeballs.hpp"
#include "orderly/net/listener.hpp"

namespace orderly::test::faults {

// Skip without IPv6 on the veth pair (a kernel with IPv6 disabled).
#define ORDERLY_NEED_NETNS6(net)                                                   \
    do {                                                                           \
        ORDERLY_NEED_NETNS(net);                                                   \
        if (!(net).has_ipv6()) GTEST_SKIP() << "no IPv6 in the test's namespaces"; \
    } while (0)

// A's two addresses with one port; listening only when asked (a port nobody listens on refuses).
struct dual_server {
    endpoint v6;
    endpoint v4;
    listener l6;
    listener l4;

    dual_server(netns_pair& net, bool listening) {
        net.in(side::a, [&] {
            // The port comes from the IPv6 listener; the IPv4 address takes the same one (a fresh
            // namespace has nothing else bound). Without listeners the port is released again.
            auto six = listener::listen(net.address6(side::a, 0));
            EXPECT_TRUE(six.has_value()) << (six ? "" : six.error().message());
            if (!six) return;
            const auto port = six->local_endpoint().port();
            v6 = net.address6(side::a, port);
            v4 = net.address(side::a, port);
            if (!listening) return;
            l6 = std::move(*six);
            auto four = listener::listen(v4);
            EXPECT_TRUE(four.has_value()) << (four ? "" : four.error().message());
            if (four) l4 = std::move(*four);
        });
    }
    // "dual.test:<port>"-style text for a name that maps to both.
    [[nodiscard]] std::string port_text() const { return std::to_string(v4.port()); }
};

// Every TCP socket of a namespace except listeners, as `ss -Htan` prints them ("ESTAB 0 0 ...").
inline std::vector<std::string> tcp_sockets(netns_pair& net, side s) {
    auto r = run_process(net.exec_argv(s, {"ss", "-Htan"}));
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < r.out.size()) {
        auto end = r.out.find('\n', at);
        if (end == std::string::npos) end = r.out.size();
        std::string line = r.out.substr(at, end - at);
        if (!line.empty() && line.rfind("LISTEN", 0) != 0) out.push_back(line);
        at = end + 1;
    }
    return out;
}

inline std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines)
        s += l + "\n";
    return s;
}

// Accepts what arrived at `l` within `wait`; how many connections the peer saw.
inline int accepted_count(listener& l, clock::duration wait) {
    int n = 0;
    auto until = deadline::after(wait);
    while (auto s = l.accept(until)) {
        ++n;
        until = deadline::after(std::chrono::milliseconds(100));
    }
    return n;
}

// The race must have started the IPv4 attempt one attempt delay (250 ms) after the IPv6 one and
// connected at once: 250 ms +- 50 ms.
inline ::testing::AssertionResult near_attempt_delay(steady::duration took) {
    const double t = ms(took);
    if (t >= 200 && t <= 300) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "connected after " << t << " ms, not 250 +- 50 ms";
}

// A loop whose thread lives in namespace B, so the sockets it creates are B's.
class loop_in_b {
  public:
    explicit loop_in_b(netns_pair& net)
        : thread_([this, &net] { net.in(side::b, [this] { lp.run(); }); }) {}
    ~loop_in_b() {
        lp.stop();
        thread_.join();
    }
    loop_in_b(const loop_in_b&) = delete;
    loop_in_b& operator=(const loop_in_b&) = delete;

    // Runs fn on the loop thread and waits for it (at most 10 s).
    void sync(const std::function<void()>& fn) {
        std::promise<void> done;
        auto f = done.get_future();
        lp.post([&] {
            fn();
            done.set_value();
        });
        if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) std::abort();
    }

    loop lp;

  private:
    std::thread thread_;
};

// Where connect_probe is: next to this test binary.
inline std::string probe_binary() {
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return {};
    std::string path(self, static_cast<std::size_t>(n));
    path.resize(path.rfind('/') + 1);
    path += "connect_probe";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string{};
}

}  // namespace orderly::test::faults
