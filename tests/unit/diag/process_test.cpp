#include "orderly/diag/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "diag_test_util.hpp"
#include "orderly/core/errc.hpp"
#include "support/loopback.hpp"

namespace orderly::diag {
namespace {

TEST(process, socket_links_name_their_inode) {
    EXPECT_EQ(socket_inode_of("socket:[12345]"), std::optional<std::uint64_t>(12345));
    EXPECT_FALSE(socket_inode_of("pipe:[12345]").has_value());
    EXPECT_FALSE(socket_inode_of("socket:[]").has_value());
    EXPECT_FALSE(socket_inode_of("socket:[12x]").has_value());
    EXPECT_FALSE(socket_inode_of("socket:[12").has_value());
    EXPECT_FALSE(socket_inode_of("/dev/null").has_value());
    EXPECT_FALSE(socket_inode_of("anon_inode:[eventpoll]").has_value());
}

TEST(process, parses_the_descriptor_limit) {
    const std::string text =
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max cpu time              unlimited            unlimited            seconds   \n"
        "Max open files            1024                 524288               files     \n"
        "Max locked memory         8388608              8388608              bytes     \n";
    const auto l = parse_descriptor_limit(text);
    EXPECT_EQ(l.soft, std::optional<std::uint64_t>(1024));
    EXPECT_EQ(l.hard, std::optional<std::uint64_t>(524288));
    const auto u = parse_descriptor_limit("Max open files  unlimited  unlimited  files\n");
    EXPECT_FALSE(u.soft.has_value());
    EXPECT_FALSE(u.hard.has_value());
    EXPECT_FALSE(parse_descriptor_limit("").soft.has_value());
}

TEST(process, parses_tcp_counters_by_name_not_position) {
    const std::string text =
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnData TCPAbortOnClose\n"
        "TcpExt: 0 17 18 3 4\n"
        "IpExt: InNoRoutes ListenOverflows\n"
        "IpExt: 1 99\n";
    const auto c = parse_tcp_counters(text);
    EXPECT_EQ(c.listen_overflows, std::optional<std::uint64_t>(17));
    EXPECT_EQ(c.listen_drops, std::optional<std::uint64_t>(18));
    EXPECT_EQ(c.abort_on_data, std::optional<std::uint64_t>(3));
    EXPECT_EQ(c.abort_on_close, std::optional<std::uint64_t>(4));
    EXPECT_FALSE(parse_tcp_counters("TcpExt: ListenOverflows\n").listen_overflows.has_value());
}

TEST(process, parses_the_real_uid) {
    EXPECT_EQ(parse_status_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\n"),
              std::optional<std::uint32_t>(1000));
    EXPECT_FALSE(parse_status_uid("Name:\tx\n").has_value());
}

TEST(process, reads_our_own_sockets_and_limit) {
    auto pair = orderly::test::make_pair();
    auto p = read_process(static_cast<int>(::getpid()));
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ(p->pid, ::getpid());
    EXPECT_EQ(p->uid, ::getuid());
    EXPECT_FALSE(p->name.empty());
    EXPECT_NE(p->command.find("unit_diag"), std::string::npos) << p->command;
    const auto has = [&](int fd) {
        return std::any_of(p->sockets.begin(), p->sockets.end(), [&](const socket_descriptor& d) {
            return d.fd == fd && d.inode == test::inode_of(fd);
        });
    };
    EXPECT_TRUE(has(pair.client.native_handle()));
    EXPECT_TRUE(has(pair.server.native_handle()));
    EXPECT_TRUE(std::is_sorted(p->sockets.begin(), p->sockets.end(),
                               [](const auto& a, const auto& b) { return a.fd < b.fd; }));
    EXPECT_GE(p->open_descriptors, p->sockets.size() + 3);
    rlimit rl{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY) {
        EXPECT_EQ(p->limit.soft, rl.rlim_cur);
    }
    EXPECT_EQ(p->netns, own_netns());
    EXPECT_NE(own_netns(), 0U);
}

TEST(process, counts_descriptors_without_the_one_that_lists_them) {
    auto p = read_process(static_cast<int>(::getpid()));
    ASSERT_TRUE(p.has_value()) << p.error().message();
    std::size_t n = 0;
    for (int fd = 0; fd < 4096; ++fd)
        n += ::fcntl(fd, F_GETFD) >= 0 ? 1 : 0;
    EXPECT_EQ(p->open_descriptors, n);
}

TEST(process, a_missing_process_is_named) {
    // PIDs above pid_max never exist.
    std::ifstream max_file("/proc/sys/kernel/pid_max");
    int pid_max = 0;
    max_file >> pid_max;
    ASSERT_GT(pid_max, 0);
    auto p = read_process(pid_max + 1);
    ASSERT_FALSE(p.has_value());
    EXPECT_EQ(p.error().code, errno_code(ESRCH));
    EXPECT_NE(p.error().message().find("no process with PID " + std::to_string(pid_max + 1)),
              std::string::npos)
        << p.error().message();
    auto zero = read_process(0);
    ASSERT_FALSE(zero.has_value());
    EXPECT_EQ(zero.error().code, make_error_code(errc::invalid_argument));
}

TEST(process, lists_processes_including_ourselves) {
    const auto pids = list_processes();
    EXPECT_TRUE(std::binary_search(pids.begin(), pids.end(), static_cast<int>(::getpid())));
    EXPECT_TRUE(std::binary_search(pids.begin(), pids.end(), 1));
}

TEST(process, reads_the_counters_of_our_namespace) {
    const auto c = read_tcp_counters(static_cast<int>(::getpid()));
    EXPECT_TRUE(c.listen_overflows.has_value());
    EXPECT_TRUE(c.abort_on_close.has_value());
}

}  // namespace
}  // namespace orderly::diag
