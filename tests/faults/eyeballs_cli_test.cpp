// `orderly connect` and Happy Eyeballs: the CLI runs in namespace B with a hosts file of the test
// that maps dual.test to A's IPv6 and IPv4 address (a private mount namespace; the machine's
// /etc/hosts stays as it is), nftables in A drops the SYNs to the IPv6 address, and this process
// is the peer in A. Checked: the exit code, the "connect" member of the --json report, the time.

#include <gtest/gtest.h>

#include "eyeballs_common.hpp"

namespace orderly::test::faults {
namespace {

class eyeballs_cli : public testing::Test {
  protected:
    void SetUp() override {
        if (orderly_binary().empty()) GTEST_FAIL() << "the orderly binary is not built";
    }

    // `orderly connect ARGS... dual.test:<port>` with stdin at EOF; the peer (when `serve`)
    // accepts one connection on the IPv4 listener, reads to EOF and closes in order.
    process_result run(netns_pair& net, dual_server& srv, const std::vector<std::string>& args,
                       bool serve) {
        const scratch_file hosts("hosts",
                                 srv.v6.host() + " dual.test\n" + srv.v4.host() + " dual.test\n");
        std::vector<std::string> argv = {orderly_binary(), "connect"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back("dual.test:" + srv.port_text());
        child_process::options o;
        o.stdin_file = "/dev/null";
        child_process cli(in_b_with_files(net, {{hosts.path(), "/etc/hosts"}}, argv), o);
        EXPECT_TRUE(cli.started()) << cli.error();
        if (serve) {
            auto s = srv.l4.accept(deadline::after(5s));
            EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
            if (s) {
                std::string got;
                (void)s->read_to_end(got, deadline::after(5s));
                (void)s->close_gracefully(close_within(2s));
            }
        }
        return cli.wait(15s);
    }
};

TEST_F(eyeballs_cli, connects_over_ipv4_one_attempt_delay_after_ipv6) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    auto r = run(net, srv, {"--json"}, true);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto tried = json_values(r.err, "to");
    ASSERT_EQ(tried, (std::vector<std::string>{srv.v6.to_string(), srv.v4.to_string()})) << r.err;
    const auto won = json_values(r.err, "connected_to");
    ASSERT_EQ(won, std::vector<std::string>{srv.v4.to_string()}) << r.err;
    auto number = [&](std::string_view key, std::size_t i) {
        const auto v = json_values(r.err, key);
        return i < v.size() ? std::strtod(v[i].c_str(), nullptr) : -1.0;
    };
    const double connected = number("connect_ms", 0);
    note_timing("connected over IPv4",
                std::chrono::duration_cast<steady::duration>(
                    std::chrono::duration<double, std::milli>(connected - number("started_ms", 0))),
                250ms);
    EXPECT_TRUE(fell_back_after_the_attempt_delay(number("started_ms", 0), number("started_ms", 1),
                                                  connected))
        << r.err;
    EXPECT_EQ(json_values(r.err, "outcome").front(), "clean") << r.err;
    EXPECT_EQ(accepted_count(srv.l6, 100ms), 0);
}

TEST_F(eyeballs_cli, report_names_the_winner) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    auto r = run(net, srv, {"--report"}, true);
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string want = "connect: connected to " + srv.v4.to_string() + " after ";
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(attempt 2 of 2; " + srv.v6.to_string() + " cancelled after "),
              std::string::npos)
        << r.err;
}

TEST_F(eyeballs_cli, both_families_refused_exit_3_with_one_error_naming_both) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, false);
    auto r = run(net, srv, {}, false);
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_NE(
        r.err.find("orderly: connect to dual.test:" + srv.port_text() + ": " + srv.v6.to_string() +
                   ": connection refused; " + srv.v4.to_string() + ": connection refused"),
        std::string::npos)
        << r.err;
}

TEST_F(eyeballs_cli, delay_zero_is_sequential_and_times_out_on_the_black_hole) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, true);
    ASSERT_TRUE(net.black_hole(side::a, {srv.v6})) << net.error();
    auto r = run(net, srv, {"--eyeballs-delay", "0", "--timeout", "700ms"}, false);
    EXPECT_EQ(r.status, 5) << r.err;
    EXPECT_NE(r.err.find(srv.v6.to_string() + ": timed out; 1 more address not tried"),
              std::string::npos)
        << r.err;
    EXPECT_GE(r.took, 700ms);
    EXPECT_EQ(accepted_count(srv.l4, 100ms), 0) << "IPv4 was never tried";
}

TEST_F(eyeballs_cli, an_eyeballs_delay_out_of_range_is_a_usage_error) {
    netns_pair net;
    ORDERLY_NEED_NETNS6(net);
    dual_server srv(net, false);
    auto r = run(net, srv, {"--eyeballs-delay", "50ms"}, false);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("--eyeballs-delay"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("100 ms to 2 s"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace orderly::test::faults
