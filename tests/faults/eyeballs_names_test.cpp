// Happy Eyeballs by name: "dual.test" maps to namespace A's IPv6 and IPv4 address, either in a
// hosts file or through a DNS server of this test (in A, answering A and AAAA with the delays a
// case asks for). The connect runs in connect_probe, a child process in namespace B with its
// own mount namespace, where the test's hosts file, resolv.conf and nsswitch.conf are bound over
// the real ones (which the machine keeps untouched). Each case runs the blocking connect and the
// event layer's connect.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "eyeballs_common.hpp"
#include "orderly/core/unique_fd.hpp"

namespace orderly::test::faults {
namespace {

constexpr std::uint16_t type_a = 1;
constexpr std::uint16_t type_aaaa = 28;

std::uint16_t be16(const unsigned char* p) {
    return static_cast<std::uint16_t>((p[0] << 8U) | p[1]);
}
void put16(std::string& out, std::uint32_t v) {
    out += static_cast<char>((v >> 8U) & 255U);
    out += static_cast<char>(v & 255U);
}

// A DNS server for one name on A's IPv4 address, port 53: A and AAAA answers after their own
// delay (or never); every other name is NXDOMAIN. Only what glibc's stub resolver sends.
class fake_dns {
  public:
    struct config {
        endpoint v4;
        endpoint v6;
        std::chrono::milliseconds a_delay{0};
        std::chrono::milliseconds aaaa_delay{0};
        bool aaaa_never = false;
    };

    fake_dns(netns_pair& net, std::string name, config cfg)
        : name_(std::move(name)), cfg_(cfg), at_(net.address(side::a, 53)) {
        net.in(side::a, [&] {
            fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
            if (fd_ && ::bind(fd_.get(), at_.data(), at_.size()) != 0) fd_.reset();
        });
        if (fd_) thread_ = std::thread([this] { serve(); });
    }
    ~fake_dns() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    fake_dns(const fake_dns&) = delete;
    fake_dns& operator=(const fake_dns&) = delete;

    [[nodiscard]] bool ready() const { return fd_.valid(); }
    [[nodiscard]] const endpoint& address() const { return at_; }
    [[nodiscard]] int queries(std::uint16_t type) const {
        return type == type_a ? a_queries_.load() : aaaa_queries_.load();
    }

  private:
    struct pending {
        steady::time_point due;
        std::string bytes;
        sockaddr_storage to;
        socklen_t to_len;
    };

    void serve() {
        std::vector<pending> queue;
        while (!stop_) {
            pollfd p{fd_.get(), POLLIN, 0};
            (void)::poll(&p, 1, 5);
            unsigned char buf[512];
            sockaddr_storage from{};
            socklen_t len = sizeof from;
            const ssize_t n =
                ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n > 0) answer(buf, static_cast<std::size_t>(n), from, len, queue);
            const auto now = steady::now();
            std::erase_if(queue, [&](const pending& q) {
                if (q.due > now) return false;
                (void)::sendto(fd_.get(), q.bytes.data(), q.bytes.size(), 0,
                               reinterpret_cast<const sockaddr*>(&q.to), q.to_len);
                return true;
            });
        }
    }

    void answer(const unsigned char* q, std::size_t n, const sockaddr_storage& from, socklen_t len,
                std::vector<pending>& queue) {
        if (n < 12 || be16(q + 4) != 1) return;
        std::size_t at = 12;
        std::string name;
        while (at < n && q[at] != 0) {
            const std::size_t label = q[at];
            if (at + 1 + label >= n) return;
            if (!name.empty()) name += '.';
            name.append(reinterpret_cast<const char*>(q + at + 1), label);
            at += 1 + label;
        }
        if (at + 5 > n) return;
        const std::uint16_t qtype = be16(q + at + 1);
        const std::size_t question_end = at + 5;
        const bool ours = strcasecmp(name.c_str(), name_.c_str()) == 0;
        const bool wanted = ours && (qtype == type_a || qtype == type_aaaa);
        if (ours && qtype == type_a) ++a_queries_;
        if (ours && qtype == type_aaaa) ++aaaa_queries_;
        if (ours && qtype == type_aaaa && cfg_.aaaa_never) return;

        std::string r(reinterpret_cast<const char*>(q), 2);              // the query's id
        put16(r, 0x8080U | (be16(q + 2) & 0x0100U) | (ours ? 0U : 3U));  // QR RA (RD), rcode
        put16(r, 1);
        put16(r, wanted ? 1 : 0);
        put16(r, 0);
        put16(r, 0);
        r.append(reinterpret_cast<const char*>(q + 12), question_end - 12);
        if (wanted) {
            put16(r, 0xC00C);  // the name, as a pointer to the question's
            put16(r, qtype);
            put16(r, 1);  // IN
            put16(r, 0);
            put16(r, 60);  // TTL
            if (qtype == type_a) {
                const auto* sin = reinterpret_cast<const sockaddr_in*>(cfg_.v4.data());
                put16(r, 4);
                r.append(reinterpret_cast<const char*>(&sin->sin_addr), 4);
            } else {
                const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(cfg_.v6.data());
                put16(r, 16);
                r.append(reinterpret_cast<const char*>(&sin6->sin6_addr), 16);
            }
        }
        const auto delay = qtype == type_aaaa ? cfg_.aaaa_delay : cfg_.a_delay;
        queue.push_back({steady::now() + delay, std::move(r), from, len});
    }

    std::string name_;
    config cfg_;
    endpoint at_;
    unique_fd fd_;
    std::atomic<bool> stop_{false};
    std::atomic<int> a_queries_{0};
    std::atomic<int> aaaa_queries_{0};
    std::thread thread_;
};

// What connect_probe printed: its first words and the numbers of its JSON report.
struct probe_result {
    bool ok = false;
    std::string winner;              // "10.1.2.1:40000" when ok
    double took_ms = -1;             // from the start of the connect to the winner
    double first_answer_ms = -1;     // when the first lookup answer with addresses came
    std::vector<std::string> tried;  // the attempts' addresses, in the order started
    std::vector<double> started_ms;  // and when each started
    std::string line;                // the whole output, for messages

    // From the first attempt's start to the winner: the race itself, without the lookups (whose
    // time depends on the machine's load more than on the algorithm).
    [[nodiscard]] steady::duration race() const {
        const double ms = started_ms.empty() ? -1 : took_ms - started_ms.front();
        return std::chrono::duration_cast<steady::duration>(
            std::chrono::duration<double, std::milli>(ms));
    }
};

class eyeballs_names : public testing::TestWithParam<std::string> {
  protected:
    // Runs connect_probe in B with these files bound over /etc/hosts and /etc/resolv.conf.
    probe_result probe(netns_pair& net, const std::string& where, const std::string& hosts,
                       const std::string& resolv) {
        const scratch_file hosts_file("hosts", hosts);
        const scratch_file resolv_file("resolv.conf", resolv);
        // Only files and DNS: no mDNS or other module that might send elsewhere.
        const scratch_file nsswitch("nsswitch.conf", "hosts: files dns\n");
        auto r = run_process(in_b_with_files(net,
                                             {{hosts_file.path(), "/etc/hosts"},
                                              {resolv_file.path(), "/etc/resolv.conf"},
                                              {nsswitch.path(), "/etc/nsswitch.conf"}},
                                             {probe_binary(), GetParam(), where, "5000"}),
                             {}, 15s);
        probe_result p;
        p.line = r.out + r.err;
        EXPECT_FALSE(r.timed_out) << p.line;
        char word[16] = {};
        char winner[128] = {};
        if (std::sscanf(r.out.c_str(), "%15s %127s %lf", word, winner, &p.took_ms) == 3) {
            p.ok = std::string(word) == "ok" && r.status == 0;
            p.winner = winner;
        }
        const auto first = json_values(r.out, "first_answer_ms");
        if (!first.empty()) p.first_answer_ms = std::strtod(first.front().c_str(), nullptr);
        p.tried = json_values(r.out, "to");
        for (const auto& v : json_values(r.out, "started_ms"))
            p.started_ms.push_back(std::strtod(v.c_str(), nullptr));
        if (p.ok) note_timing("connected to " + p.winner + ", race", p.race(), 250ms);
        return p;
    }

    // Runs connect_probe for "dual.test:<port>" with a hosts file that does not name it and a
    // DNS server of this test in A answering as `cfg` says; `queries` gets (AAAA, A) counts.
    probe_result probe_by_dns(netns_pair& net, const dual_server& srv, fake_dns::config cfg,
                              int resolver_timeout_s, std::pair<int, int>* queries = nullptr) {
        fake_dns dns(net, "dual.test", cfg);
        EXPECT_TRUE(dns.ready());
        auto p = probe(net, "dual.test:" + srv.port_text(), "127.0.0.1 localhost\n",
                       "nameserver " + dns.address().host() + "\noptions timeout:" +
                           std::to_string(resolver_timeout_s) + " attempts:1\n");
        if (queries != nullptr) *queries = {dns.queries(type_aaaa), dns.queries(type_a)};
        return p;
    }

    void SetUp() override {
        if (probe_binary().empty()) GTEST_FAIL() << "connect_probe is not built next to the test";
    }
};

TEST_P(eyeballs_names, a_hosts_file_name_falls_back_to_ipv4_after_the_attempt_delay) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    const std::string hosts = srv.v4.host() + " dual.test\n" + srv.v6.host() + " dual.test\n";
    // No DNS: a nameserver on B's own loopback, where nothing listens.
    auto p = probe(net, "dual.test:" + srv.port_text(), hosts, "nameserver 127.0.0.1\n");
    ASSERT_TRUE(p.ok) << p.line;
    EXPECT_EQ(p.winner, srv.v4.to_string()) << p.line;
    EXPECT_EQ(p.tried, (std::vector<std::string>{srv.v6.to_string(), srv.v4.to_string()}))
        << "IPv6 from the file first: " << p.line;
    ASSERT_EQ(p.started_ms.size(), 2U) << p.line;
    EXPECT_TRUE(fell_back_after_the_attempt_delay(p.started_ms[0], p.started_ms[1], p.took_ms))
        << p.line;
    EXPECT_EQ(p.first_answer_ms, 0) << "a name from the hosts file needs no lookup";
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
    EXPECT_EQ(accepted_count(srv.l6, 100ms), 0);
}

TEST_P(eyeballs_names, looked_up_names_fall_back_to_ipv4_after_the_attempt_delay) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    std::pair<int, int> queries;
    auto p = probe_by_dns(net, srv, {srv.v4, srv.v6}, 2, &queries);
    ASSERT_TRUE(p.ok) << p.line;
    EXPECT_EQ(p.winner, srv.v4.to_string());
    EXPECT_EQ(p.tried, (std::vector<std::string>{srv.v6.to_string(), srv.v4.to_string()}))
        << p.line;
    ASSERT_EQ(p.started_ms.size(), 2U) << p.line;
    EXPECT_TRUE(fell_back_after_the_attempt_delay(p.started_ms[0], p.started_ms[1], p.took_ms))
        << p.line;
    EXPECT_GT(p.first_answer_ms, 0) << p.line;
    EXPECT_EQ(queries.first, 1) << "one AAAA lookup of its own";
    EXPECT_EQ(queries.second, 1) << "one A lookup of its own";
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
    EXPECT_EQ(accepted_count(srv.l6, 100ms), 0);
}

TEST_P(eyeballs_names, an_unanswered_aaaa_holds_ipv4_only_for_the_resolution_delay) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    fake_dns::config cfg{srv.v4, srv.v6};
    cfg.aaaa_never = true;
    std::pair<int, int> queries;
    auto p = probe_by_dns(net, srv, cfg, 3, &queries);
    ASSERT_TRUE(p.ok) << p.line;
    EXPECT_EQ(p.winner, srv.v4.to_string());
    // A answered at once, AAAA never: IPv4 starts 50 ms after the A answer, and the connect does
    // not wait for the AAAA lookup's 3 s timeout.
    ASSERT_EQ(p.tried, std::vector<std::string>{srv.v4.to_string()}) << p.line;
    const double held = p.started_ms.front() - p.first_answer_ms;
    // (50 ms, plus the scheduling lateness eyeballs_common.hpp allows for the loaded machine.)
    EXPECT_TRUE(held >= 49 && held <= 150) << "held " << held << " ms: " << p.line;
    EXPECT_LT(p.took_ms, 1000) << p.line;
    EXPECT_EQ(queries.first, 1);
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
}

TEST_P(eyeballs_names, a_late_a_answer_joins_the_race) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    fake_dns::config cfg{srv.v4, srv.v6};
    cfg.a_delay = 400ms;
    auto p = probe_by_dns(net, srv, cfg, 2);
    ASSERT_TRUE(p.ok) << p.line;
    EXPECT_EQ(p.winner, srv.v4.to_string());
    // IPv6 started at once (AAAA came first); IPv4 starts as soon as its address is known, about
    // 400 ms later, not at the 250 ms mark and not after the connect timeout.
    ASSERT_EQ(p.tried, (std::vector<std::string>{srv.v6.to_string(), srv.v4.to_string()}))
        << p.line;
    const double gap = p.started_ms[1] - p.started_ms[0];
    EXPECT_TRUE(gap >= 350 && gap <= 550) << "IPv4 started " << gap << " ms after IPv6: " << p.line;
    EXPECT_EQ(accepted_count(srv.l4, 2s), 1);
}

TEST_P(eyeballs_names, an_unknown_name_is_a_resolve_error) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, false);
    fake_dns dns(net, "dual.test", {srv.v4, srv.v6});
    ASSERT_TRUE(dns.ready());
    auto p = probe(net, "nosuch.test:80", "127.0.0.1 localhost\n",
                   "nameserver " + dns.address().host() + "\noptions timeout:2 attempts:1\n");
    EXPECT_FALSE(p.ok) << p.line;
    EXPECT_NE(p.line.find("cannot resolve 'nosuch.test'"), std::string::npos) << p.line;
}

INSTANTIATE_TEST_SUITE_P(modes, eyeballs_names, testing::Values("blocking", "async"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace orderly::test::faults
