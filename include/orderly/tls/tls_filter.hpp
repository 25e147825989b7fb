#pragma once
// tls_filter: TLS for an event-layer connection (connection::adopt with a filter). OpenSSL runs
// over memory BIOs: the connection's backend (epoll or io_uring) moves the ciphertext, this only
// encrypts, decrypts and reports what OpenSSL said. See docs/event.md, "TLS".

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "orderly/core/result.hpp"
#include "orderly/net/stream_filter.hpp"
#include "orderly/tls/tls_context.hpp"

struct ssl_st;
struct bio_st;

namespace orderly {

class tls_filter final : public stream_filter {
  public:
    // The server side of a TLS connection (ctx from tls_context::server). Errors:
    // errc::tls_config_error (wrong context role, or OpenSSL could not allocate).
    static result<std::unique_ptr<tls_filter>, error_info> server(const tls_context& ctx);
    // The client side; server_name is sent as SNI and verified like tls_stream::client does.
    static result<std::unique_ptr<tls_filter>, error_info> client(const tls_context& ctx,
                                                                  const std::string& server_name);
    // For server_options::filter: a tls_filter::server(ctx) per accepted connection (the
    // factory keeps its own reference to the context).
    static std::function<result<std::unique_ptr<stream_filter>, error_info>()> server_factory(
        tls_context ctx);
    ~tls_filter() override;
    tls_filter(const tls_filter&) = delete;
    tls_filter& operator=(const tls_filter&) = delete;

    void start() override;
    bool feed(std::span<const std::byte> ciphertext) override;
    std::span<const std::byte> read_plaintext() override;
    bool write_plaintext(std::span<const std::byte> plaintext) override;
    void send_close_notify() override;
    std::span<const std::byte> take_ciphertext() override;

    [[nodiscard]] bool handshake_done() const noexcept override { return established_; }
    [[nodiscard]] bool close_notify_sent() const noexcept override { return our_notify_; }
    [[nodiscard]] bool close_notify_received() const noexcept override { return peer_notify_; }
    [[nodiscard]] bool failed() const noexcept override { return !detail_.empty(); }
    [[nodiscard]] std::string failure_detail() const override { return detail_; }
    [[nodiscard]] std::size_t plaintext_buffered() const noexcept override { return held_.size(); }
    void describe(tls_close_info& out) const override;

  private:
    struct ssl_free {
        void operator()(ssl_st* s) const noexcept;
    };
    explicit tls_filter(ssl_st* ssl, bio_st* rbio, bio_st* wbio) noexcept;
    static result<std::unique_ptr<tls_filter>, error_info> make(const tls_context& ctx,
                                                                bool client);
    void advance_handshake();
    bool encrypt(std::span<const std::byte> plaintext);
    void fail_with(int ssl_error);

    std::unique_ptr<ssl_st, ssl_free> ssl_;
    bio_st* rbio_;  // owned by ssl_
    bio_st* wbio_;
    std::vector<std::byte> held_;   // plaintext written before the handshake finished
    std::vector<std::byte> plain_;  // the last read_plaintext() chunk
    std::vector<std::byte> out_;    // the last take_ciphertext() chunk
    std::string detail_;
    bool client_ = false;
    bool established_ = false;
    bool our_notify_ = false;
    bool peer_notify_ = false;
};

}  // namespace orderly
