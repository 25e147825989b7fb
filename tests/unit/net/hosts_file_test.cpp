#include "orderly/net/hosts_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

// A hosts file of the test's own, removed at the end.
class hosts : public testing::Test {
  protected:
    void SetUp() override {
        path_ = std::string(::testing::TempDir()) + "orderly-hosts-" + std::to_string(::getpid());
        std::ofstream f(path_);
        f << "# a comment line\n"
             "127.0.0.1\tlocalhost\n"
             "10.0.0.1 dual.test alias.test  # trailing comment\n"
             "fd00::1 dual.test\n"
             "bogus dual.test\n"
             "fe80::1%nosuchif0 dual.test\n"
             "10.0.0.1 DUAL.TEST\n"
             "10.0.0.2\n"
             "   \n";
    }
    void TearDown() override { ::unlink(path_.c_str()); }

    std::vector<std::string> lookup(std::string_view host, std::string_view port = "80") {
        auto r = hosts_file_lookup(host, port, path_);
        EXPECT_TRUE(r) << r.error().message();
        std::vector<std::string> out;
        if (r) {
            for (const auto& e : *r)
                out.push_back(e.to_string());
        }
        return out;
    }

    std::string path_;
};

TEST_F(hosts, ipv6_first_then_file_order_without_duplicates_or_bad_lines) {
    EXPECT_EQ(lookup("dual.test"), (std::vector<std::string>{"[fd00::1]:80", "10.0.0.1:80"}));
    EXPECT_EQ(lookup("Dual.Test", "8080"),
              (std::vector<std::string>{"[fd00::1]:8080", "10.0.0.1:8080"}));
    EXPECT_EQ(lookup("alias.test"), (std::vector<std::string>{"10.0.0.1:80"}));
    EXPECT_EQ(lookup("localhost"), (std::vector<std::string>{"127.0.0.1:80"}));
}

TEST_F(hosts, names_not_in_the_file_give_nothing) {
    EXPECT_TRUE(lookup("other.test").empty());
    EXPECT_TRUE(lookup("10.0.0.2").empty()) << "an address is not a name";
    EXPECT_TRUE(lookup("").empty());
    auto missing = hosts_file_lookup("dual.test", "80", path_ + ".missing");
    ASSERT_TRUE(missing);
    EXPECT_TRUE(missing->empty());
}

TEST_F(hosts, a_bad_port_is_an_error_and_service_names_work) {
    auto bad = hosts_file_lookup("dual.test", "70000", path_);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::address_parse);
    EXPECT_NE(bad.error().message().find("70000"), std::string::npos);
    if (::access("/etc/services", R_OK) == 0) {
        EXPECT_EQ(lookup("alias.test", "http"), (std::vector<std::string>{"10.0.0.1:80"}));
    }
}

}  // namespace
}  // namespace orderly
