// docs/tls.md's example compiles (doc_example.hpp), works against a tls_stream server, and is
// the same text as in the page.
#include "doc_example.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "support/loopback.hpp"
#include "tls_support.hpp"

namespace orderly {
namespace {

using namespace std::chrono_literals;

std::string between_markers(const std::string& text) {
    const std::string b = "// --- docs/tls.md example begin ---\n";
    const std::string e = "// --- docs/tls.md example end ---";
    const auto from = text.find(b);
    const auto to = text.find(e);
    if (from == std::string::npos || to == std::string::npos) return {};
    return text.substr(from + b.size(), to - from - b.size());
}

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

TEST(tls_doc_example, is_the_page_text) {
    const std::string code = between_markers(slurp(ORDERLY_TLS_DOC_EXAMPLE));
    ASSERT_FALSE(code.empty());
    const std::string page = slurp(ORDERLY_TLS_DOC_PAGE);
    EXPECT_NE(page.find("```cpp file\n" + code + "```"), std::string::npos)
        << "docs/tls.md's example differs from tests/unit/tls/doc_example.hpp";
}

TEST(tls_doc_example, runs_against_a_server) {
    test::cert_dir d;
    auto l = test::make_listener();
    const auto at = l.local_endpoint();
    std::thread server([&] {
        auto sock = l.accept(deadline::after(5s)).value();
        tls_server_config s;
        s.cert_file = d.cert;
        s.key_file = d.key;
        auto t = tls_stream::server(std::move(sock), tls_context::server(s).value()).value();
        ASSERT_TRUE(t.handshake(deadline::after(5s)));
        std::string req;
        EXPECT_TRUE(t.read_to_end(req, deadline::after(5s)));
        EXPECT_TRUE(t.send_all("you said: " + req, deadline::after(5s)));
        EXPECT_EQ(t.close_gracefully().outcome, close_outcome::clean);
    });
    EXPECT_EQ(tls_request(at, "localhost", d.cert, "hello"), "you said: hello");
    server.join();
}

}  // namespace
}  // namespace orderly
