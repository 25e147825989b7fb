// bench_asio: the echo peer on standalone Asio, one io_context on one thread, written in Asio's
// usual completion-handler style (async_read_some → async_write → async_read_some ...).
//
// Memory: async_read_some needs its buffer for as long as the read is outstanding, and every idle
// connection has one outstanding, so each connection owns its own 64 KiB buffer (allocated
// uninitialised: an idle connection touches only the pages its reads fill). That is the cost of
// the proactor model, and part of what the benchmark measures. The echo is written from that same
// buffer and the next read starts only when the write has completed, so output never needs a
// second buffer and a client that does not read stops the server reading. Asio's epoll reactor
// registers sockets edge-triggered and tries each operation at once before waiting.

#include <sys/resource.h>

#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using asio::ip::tcp;
constexpr std::size_t read_size = 64 * 1024;

class session;

struct server_state {
    explicit server_state(asio::io_context& io)
        : acceptor(io), signals(io), stop_timer(io), accept_retry(io) {}
    tcp::acceptor acceptor;
    asio::signal_set signals;
    asio::steady_timer stop_timer;
    asio::steady_timer accept_retry;
    std::unordered_set<std::shared_ptr<session>> live;
    bool stopping = false;

    void forget(const std::shared_ptr<session>& s) {
        live.erase(s);
        if (stopping && live.empty()) stop_timer.cancel();
    }
};

class session : public std::enable_shared_from_this<session> {
  public:
    session(tcp::socket sock, server_state& st)
        : sock_(std::move(sock)), st_(st), buf_(new char[read_size]) {}

    void start() { read(); }

    // The graceful stop: FIN now unless an echo is still being written (then after it), and
    // keep reading to the peer's EOF, dropping what arrives.
    void stop() {
        if (!writing_) send_fin();
    }

    void abort() {
        asio::error_code ec;
        sock_.set_option(asio::socket_base::linger(true, 0), ec);
        sock_.close(ec);  // cancels the pending operations; their handlers forget us
    }

  private:
    void read() {
        sock_.async_read_some(asio::buffer(buf_.get(), read_size),
                              [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                                  self->on_read(ec, n);
                              });
    }

    void on_read(asio::error_code ec, std::size_t n) {
        if (ec == asio::error::eof) {
            peer_eof_ = true;
            if (!writing_) finish();
            return;
        }
        if (ec) return end();
        if (st_.stopping) return read();  // after the stop began: drained, not echoed
        writing_ = true;
        asio::async_write(sock_, asio::buffer(buf_.get(), n),
                          [self = shared_from_this()](asio::error_code wec, std::size_t) {
                              self->on_written(wec);
                          });
    }

    void on_written(asio::error_code ec) {
        writing_ = false;
        if (ec) return end();
        if (st_.stopping) {
            send_fin();
            if (peer_eof_) return end();
        }
        read();
    }

    // Both directions done (or the peer's EOF with nothing owed): FIN, then release.
    void finish() {
        send_fin();
        end();
    }

    void send_fin() {
        if (fin_sent_ || !sock_.is_open()) return;
        fin_sent_ = true;
        asio::error_code ec;
        sock_.shutdown(tcp::socket::shutdown_send, ec);
    }

    void end() {
        asio::error_code ec;
        sock_.close(ec);
        st_.forget(shared_from_this());
    }

    tcp::socket sock_;
    server_state& st_;
    std::unique_ptr<char[]> buf_;
    bool writing_ = false;
    bool peer_eof_ = false;
    bool fin_sent_ = false;
};

void accept_next(server_state& st) {
    st.acceptor.async_accept([&st](asio::error_code ec, tcp::socket sock) {
        if (st.stopping) return;
        if (ec == asio::error::no_descriptors || ec.value() == ENFILE ||
            ec == asio::error::no_buffer_space) {
            // Descriptor exhaustion (the benchmark should stay below the limit): retrying at
            // once would spin, so pause; clients wait in the backlog meanwhile.
            std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
            st.accept_retry.expires_after(std::chrono::milliseconds(100));
            st.accept_retry.async_wait([&st](asio::error_code tec) {
                if (!tec && !st.stopping) accept_next(st);
            });
            return;
        }
        if (!ec) {
            asio::error_code oec;
            sock.set_option(tcp::no_delay(true), oec);
            sock.non_blocking(true, oec);
            auto s = std::make_shared<session>(std::move(sock), st);
            st.live.insert(s);
            s->start();
        }
        accept_next(st);
    });
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        if (std::strcmp(argv[i], "--port") == 0)
            port = static_cast<unsigned short>(std::stoi(argv[i + 1]));
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }

    asio::io_context io(1);  // one thread: lets Asio skip its internal locking
    server_state st(io);
    try {
        const tcp::endpoint at(asio::ip::make_address(host), port);
        st.acceptor.open(at.protocol());
        st.acceptor.set_option(tcp::acceptor::reuse_address(true));
        st.acceptor.bind(at);
        st.acceptor.listen(INT_MAX);  // the kernel clamps to somaxconn
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "listen %s:%u: %s\n", host.c_str(), port, e.what());
        return 1;
    }
    const auto local = st.acceptor.local_endpoint();
    std::printf("listening on %s:%u\n", local.address().to_string().c_str(), local.port());
    std::fflush(stdout);

    st.signals.add(SIGTERM);
    st.signals.add(SIGINT);
    st.signals.async_wait([&st](asio::error_code ec, int) {
        if (ec) return;
        st.stopping = true;
        asio::error_code ignored;
        st.acceptor.close(ignored);
        st.accept_retry.cancel();
        if (st.live.empty()) return;
        st.stop_timer.expires_after(std::chrono::seconds(5));
        st.stop_timer.async_wait([&st](asio::error_code tec) {
            if (tec) return;  // cancelled: everyone closed in time
            std::fprintf(stderr, "stop deadline: aborting %zu connections\n", st.live.size());
            for (const auto& s : st.live)
                s->abort();
        });
        for (const auto& s : st.live)
            s->stop();
    });

    accept_next(st);
    io.run();
    return 0;
}
