// Fault injection against `orderly connect`: the CLI runs in namespace B (`ip netns exec`), its
// peer is a plain socket of this process in namespace A, and the faults are made on A's veth.
// Checked: the exit code (tools/orderly/exit_codes.hpp), the --json close report on stderr, the
// wall time against --deadline, and with loss every byte of stdout.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "fault_common.hpp"

namespace orderly::test::faults {
namespace {

constexpr auto cli_deadline = 2s;

// A scratch file removed at the end of the test.
class temp_file {
  public:
    explicit temp_file(std::string_view tag) {
        const char* dir = std::getenv("TMPDIR");
        path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/orderly-faults-" +
                std::to_string(::getpid()) + "-" + std::string(tag);
    }
    ~temp_file() { ::unlink(path_.c_str()); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    bool write(const std::string& data) const {
        std::ofstream f(path_, std::ios::binary | std::ios::trunc);
        f << data;
        return static_cast<bool>(f);
    }
    [[nodiscard]] std::string read() const {
        std::ifstream f(path_, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    }

  private:
    std::string path_;
};

// The JSON close report (the line of stderr that starts with '{'), or "" when there is none.
std::string json_report(const std::string& err) {
    std::size_t at = 0;
    while (at < err.size()) {
        const auto end = err.find('\n', at);
        const std::string line = err.substr(at, end == std::string::npos ? end : end - at);
        if (!line.empty() && line.front() == '{') return line;
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return {};
}

// A number field of the JSON report, or -1 when it is missing.
double json_number(const std::string& json, std::string_view key) {
    const std::string quoted = "\"" + std::string(key) + "\":";
    const auto at = json.find(quoted);
    if (at == std::string::npos) return -1;
    return std::strtod(json.c_str() + at + quoted.size(), nullptr);
}

// How long the CLI's connection lived (connect to release) by its own report.
steady::duration reported_lifetime(const std::string& json) {
    return std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<double, std::milli>(json_number(json, "lifetime_ms")));
}

// Starting `ip netns exec` and the binary, and a sanitizer's leak scan at exit, happen outside
// the CLI's deadline and take up to a few hundred ms under ASan on a loaded machine: the wall
// clock only has to show that the process did not hang.
constexpr auto process_slack = 1s;

std::string outcome_field(const std::string& outcome) {
    return "\"outcome\":\"" + outcome + "\"";
}

struct cli_peer {
    listener lis;
    std::string address;  // where the CLI connects, "10.x.y.1:port"
};

cli_peer listen_in_a(netns_pair& net) {
    cli_peer p;
    auto l = net.in(side::a, [&] { return listener::listen(net.address(side::a, 0)); });
    EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message());
    if (!l) return p;
    p.lis = std::move(*l);
    p.address = p.lis.local_endpoint().to_string();
    return p;
}

std::vector<std::string> connect_argv(const netns_pair& net, const std::string& bin,
                                      const std::string& address, const char* deadline_text) {
    return net.exec_argv(side::b, {bin, "connect", "--json", "--deadline", deadline_text, address});
}

#define ORDERLY_NEED_CLI(bin)                                                                 \
    ASSERT_FALSE((bin).empty()) << "the orderly binary was not found: build the orderly_cli " \
                                   "target or set ORDERLY_BIN"

// The CLI is sending 4 MiB from stdin and the peer reading when the partition comes. The CLI's
// socket send buffer fills and stays full; nothing it waits for can happen, so --deadline ends it:
// exit 5, report timed_out (the CLI aborts the connection, as on any timeout).
TEST(cli_faults, partition_during_exchange_exits_5_at_the_deadline) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    const std::string bin = orderly_binary();
    ORDERLY_NEED_CLI(bin);
    cli_peer peer = listen_in_a(net);
    ASSERT_TRUE(peer.lis.is_open());
    temp_file input("exchange.in");
    ASSERT_TRUE(input.write(pattern(4U << 20)));

    child_process::options o;
    o.stdin_file = input.path();
    child_process cli(connect_argv(net, bin, peer.address, "2s"), o);
    ASSERT_TRUE(cli.started()) << cli.error();
    auto s = peer.lis.accept(deadline::after(5s));
    const auto accepted_at = steady::now();
    ASSERT_TRUE(s.has_value()) << s.error().message();
    ASSERT_GE(read_at_least(*s, 256U << 10, deadline::after(5s)), 256U << 10);
    ASSERT_TRUE(net.partition(side::a)) << net.error();
    const process_result r = cli.wait(cli_deadline + 3s);

    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 5) << r.err;
    EXPECT_NE(json_report(r.err).find(outcome_field("timed_out")), std::string::npos) << r.err;
    // --deadline starts in the CLI just before its connect. The connection's lifetime in the
    // report (connect to release) is the CLI's own measure of it: that is held to +-10 %. The
    // process as a whole, seen from our accept(), must end after the deadline and at most
    // process_slack later.
    const auto lifetime = reported_lifetime(json_report(r.err));
    EXPECT_TRUE(near_deadline(lifetime, cli_deadline)) << r.err;
    const auto since_accept = r.ended_at - accepted_at;
    EXPECT_GE(since_accept, 0.9 * cli_deadline);
    EXPECT_LE(since_accept, cli_deadline + process_slack);
    note_timing("exit 5, timed_out (reported lifetime)", lifetime, cli_deadline);
    note_timing("exit 5, timed_out (process, since accept)", since_accept, cli_deadline);

    EXPECT_GT(net.fault_hits(side::a), 0) << "the fault rules never matched";
    (void)net.heal(side::a);
    (void)s->abort();
}

// stdin ends, so the CLI sends its FIN; the peer reads it (EOF), then the partition comes and the
// peer's reply and FIN never arrive: the CLI, waiting for the peer's EOF, exits 5 at --deadline.
TEST(cli_faults, partition_during_drain_exits_5_at_the_deadline) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    const std::string bin = orderly_binary();
    ORDERLY_NEED_CLI(bin);
    cli_peer peer = listen_in_a(net);
    ASSERT_TRUE(peer.lis.is_open());

    child_process cli(connect_argv(net, bin, peer.address, "2s"), {});
    ASSERT_TRUE(cli.started()) << cli.error();
    ASSERT_TRUE(cli.write_stdin("request\n"));
    cli.close_stdin();
    auto s = peer.lis.accept(deadline::after(5s));
    const auto accepted_at = steady::now();
    ASSERT_TRUE(s.has_value()) << s.error().message();
    std::string got;
    const transfer_result read = s->read_to_end(got, deadline::after(3s));
    ASSERT_TRUE(net.partition(side::a)) << net.error();
    (void)s->send_all("reply\n");
    (void)s->shutdown(shut::write);
    const process_result r = cli.wait(cli_deadline + 3s);

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(got, "request\n");
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 5) << r.err;
    EXPECT_EQ(r.out, "");
    const std::string json = json_report(r.err);
    EXPECT_NE(json.find(outcome_field("timed_out")), std::string::npos) << r.err;
    EXPECT_NE(json.find("\"fin_sent\":true"), std::string::npos) << json;
    // --deadline starts in the CLI just before its connect. The connection's lifetime in the
    // report (connect to release) is the CLI's own measure of it: that is held to +-10 %. The
    // process as a whole, seen from our accept(), must end after the deadline and at most
    // process_slack later.
    const auto lifetime = reported_lifetime(json_report(r.err));
    EXPECT_TRUE(near_deadline(lifetime, cli_deadline)) << r.err;
    const auto since_accept = r.ended_at - accepted_at;
    EXPECT_GE(since_accept, 0.9 * cli_deadline);
    EXPECT_LE(since_accept, cli_deadline + process_slack);
    note_timing("exit 5, timed_out (reported lifetime)", lifetime, cli_deadline);
    note_timing("exit 5, timed_out (process, since accept)", since_accept, cli_deadline);

    EXPECT_GT(net.fault_hits(side::a), 0) << "the fault rules never matched";
    (void)net.heal(side::a);
    (void)s->abort();
}

// The request went through; then every segment reaching the peer is answered with RST. The CLI's
// FIN (stdin closed) draws one: exit 4, report peer_reset, well before --deadline.
TEST(cli_faults, injected_reset_exits_4_with_peer_reset) {
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    const std::string bin = orderly_binary();
    ORDERLY_NEED_CLI(bin);
    cli_peer peer = listen_in_a(net);
    ASSERT_TRUE(peer.lis.is_open());

    child_process cli(connect_argv(net, bin, peer.address, "2s"), {});
    ASSERT_TRUE(cli.started()) << cli.error();
    ASSERT_TRUE(cli.write_stdin("request\n"));
    auto s = peer.lis.accept(deadline::after(5s));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    std::string got;
    ASSERT_EQ(read_at_least(*s, 8, deadline::after(3s), &got), 8U);
    ASSERT_TRUE(net.reset(side::a)) << net.error();
    const auto fin_at = steady::now();
    cli.close_stdin();
    const process_result r = cli.wait(cli_deadline + 3s);

    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 4) << r.err;
    const std::string json = json_report(r.err);
    EXPECT_NE(json.find(outcome_field("peer_reset")), std::string::npos) << r.err;
    const auto since_fin = r.ended_at - fin_at;
    EXPECT_TRUE(within_deadline(reported_lifetime(json), cli_deadline)) << r.err;
    EXPECT_LE(since_fin, process_slack);
    note_timing("exit 4, peer_reset (process, since stdin closed)", since_fin, cli_deadline);

    EXPECT_GT(net.fault_hits(side::a), 0) << "the fault rules never matched";
    (void)net.heal(side::a);
    (void)s->abort();
}

// 5 % loss each way: the CLI uploads 512 KiB from stdin and prints the peer's 1 MiB reply; both
// arrive byte for byte, and the end is orderly: exit 0, report clean.
TEST(cli_faults, five_percent_loss_delivers_every_byte_and_exits_0) {
    constexpr auto limit = 30s;
    netns_pair net;
    ORDERLY_NEED_NETNS(net);
    const std::string bin = orderly_binary();
    ORDERLY_NEED_CLI(bin);
    cli_peer peer = listen_in_a(net);
    ASSERT_TRUE(peer.lis.is_open());
    ASSERT_TRUE(net.loss(side::a, 5)) << net.error();
    temp_file input("loss.in");
    temp_file output("loss.out");
    ASSERT_TRUE(input.write(pattern(512U << 10, 1)));

    child_process::options o;
    o.stdin_file = input.path();
    o.stdout_file = output.path();
    child_process cli(connect_argv(net, bin, peer.address, "30s"), o);
    ASSERT_TRUE(cli.started()) << cli.error();
    std::string request;
    transfer_result read;
    transfer_result sent;
    close_report peer_report;
    std::thread server([&] {
        auto s = peer.lis.accept(deadline::after(5s));
        if (!s) return;
        const auto until = deadline::after(limit);
        read = s->read_to_end(request, until, 4U << 20);
        sent = s->send_all(pattern(1U << 20, 2), until);
        peer_report = s->close_gracefully(close_within(until.remaining()));
    });
    const process_result r = cli.wait(limit + 3s);
    server.join();

    EXPECT_TRUE(read.has_value()) << read.error().message();
    EXPECT_EQ(request.size(), 512U << 10);
    EXPECT_EQ(pattern_mismatch(request, 1), std::string_view::npos);
    EXPECT_TRUE(sent.has_value()) << sent.error().message();
    EXPECT_EQ(peer_report.outcome, close_outcome::clean) << peer_report.to_string();
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(json_report(r.err).find(outcome_field("clean")), std::string::npos) << r.err;
    const std::string out = output.read();
    EXPECT_EQ(out.size(), 1U << 20);
    EXPECT_EQ(pattern_mismatch(out, 2), std::string_view::npos);
    EXPECT_TRUE(within_deadline(reported_lifetime(json_report(r.err)), limit)) << r.err;
    EXPECT_LE(r.took, limit + process_slack);
    const long long dropped = net.fault_hits(side::a);
    EXPECT_GT(dropped, 0) << "the loss rules dropped nothing";
    note_timing("exit 0, clean", r.took, limit);
    note_dropped(dropped);
}

}  // namespace
}  // namespace orderly::test::faults
