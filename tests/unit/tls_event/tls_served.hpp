#pragma once
// A `server` serving TLS (opts.filter = tls_filter::server_factory) with a throwaway self-signed
// certificate, recording every close report and how often on_open ran; blocking tls_stream
// clients for it. Shared by the tls_server tests (each binary runs on both backends).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "orderly/event/server.hpp"
#include "orderly/tls/tls_filter.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "unit/event/event_test_util.hpp"
#include "unit/tls/tls_support.hpp"

namespace orderly::test {

struct server_end {
    close_report report;
    timeout_kind fired = timeout_kind::none;
    bool opened = false;       // on_open ran (after the handshake)
    std::string alpn_at_open;  // what on_open saw negotiated
};

class tls_served {
  public:
    tls_served() : sctx_(make_server_ctx()), cctx_(make_client_ctx()) {}
    ~tls_served() {
        if (srv) (void)srv->stop_now();
    }
    tls_served(const tls_served&) = delete;
    tls_served& operator=(const tls_served&) = delete;

    // Starts the server with `cb` (on_open and on_closed wrapped to record) and a TLS filter.
    void start(connection_callbacks cb, server_options opts = {}) {
        if (opts.threads == 0) opts.threads = 2;
        opts.filter = tls_filter::server_factory(sctx_);
        const bool own_context = !cb.on_open;  // else the user's on_open may replace it
        auto user_open = std::move(cb.on_open);
        auto user_closed = std::move(cb.on_closed);
        cb.on_open = [this, user_open](connection& c) {
            EXPECT_TRUE(c.filter() != nullptr && c.filter()->handshake_done())
                << "on_open before the handshake";
            tls_close_info info;
            if (c.filter() != nullptr) c.filter()->describe(info);
            c.set_context(std::make_shared<std::string>(info.alpn));
            ++opened;
            if (user_open) user_open(c);
        };
        cb.on_closed = [this, user_closed, own_context](connection& c, const close_report& r) {
            if (user_closed) user_closed(c, r);
            std::lock_guard lock(m);
            const bool opened_here = c.context() != nullptr;
            std::string alpn;
            if (opened_here && own_context) alpn = *static_cast<std::string*>(c.context().get());
            ends.push_back({r, c.timeout_fired(), opened_here, alpn});
        };
        auto s = server::start(endpoint::ipv4_loopback(0), std::move(cb), std::move(opts));
        ASSERT_TRUE(s) << s.error().message();
        srv = std::move(*s);
    }
    bool wait_ends(std::size_t n, std::chrono::milliseconds t = std::chrono::seconds(10)) {
        return wait_for(
            [&] {
                std::lock_guard lock(m);
                return ends.size() >= n;
            },
            t);
    }
    std::vector<server_end> snapshot() {
        std::lock_guard lock(m);
        return ends;
    }
    // A blocking TLS client (handshake not yet done).
    tls_stream client() {
        auto c = tls_stream::client(stream_socket(raw_client()), cctx_, "localhost");
        EXPECT_TRUE(c) << c.error().message();
        return std::move(*c);
    }
    unique_fd raw_client() { return connect_client(srv->local_endpoint()); }
    [[nodiscard]] const tls_context& client_ctx() const noexcept { return cctx_; }
    [[nodiscard]] const std::string& cert_file() const noexcept { return dir_.cert; }

    std::unique_ptr<server> srv;
    std::atomic<int> opened{0};
    std::mutex m;
    std::vector<server_end> ends;

  private:
    tls_context make_server_ctx() {
        tls_server_config s;
        s.cert_file = dir_.cert;
        s.key_file = dir_.key;
        s.alpn = {"orderly-test"};
        return tls_context::server(s).value();
    }
    tls_context make_client_ctx() {
        tls_client_config c;
        c.ca_file = dir_.cert;
        c.alpn = {"orderly-test"};
        return tls_context::client(c).value();
    }
    cert_dir dir_;
    tls_context sctx_;
    tls_context cctx_;
};

// The echo the tests serve: back what arrives; on the peer's close_notify, our half-close.
inline connection_callbacks tls_echo() {
    connection_callbacks cb;
    cb.on_data = [](connection& c, std::span<const std::byte> d) { (void)c.write(d); };
    cb.on_peer_eof = [](connection& c) { c.shutdown_write(); };
    return cb;
}

inline std::string pattern(std::size_t n, std::uint64_t from = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = pattern_byte(from + i);
    return s;
}

}  // namespace orderly::test
