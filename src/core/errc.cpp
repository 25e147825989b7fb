#include "orderly/core/errc.hpp"

namespace orderly {
namespace {

class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "orderly"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::timed_out:
                return "timed out: the deadline passed";
            case errc::peer_reset:
                return "connection reset by peer";
            case errc::drain_limit:
                return "the peer kept sending after our FIN beyond the drain limit";
            case errc::address_parse:
                return "malformed address";
            case errc::resolve:
                return "name resolution failed";
            case errc::not_open:
                return "socket is not open";
            case errc::read_shut:
                return "reading was shut down on this socket";
            case errc::write_shut:
                return "writing was shut down on this socket";
            case errc::invalid_argument:
                return "invalid argument";
            case errc::aborted:
                return "connection aborted locally";
            case errc::connection_closed:
                return "connection closed";
            case errc::reset_after_shut_read:
                return "reset by our side: the peer's data arrived after shutdown(read) and our "
                       "FIN, and Linux discards such data with RST";
            case errc::tls_handshake_failed:
                return "TLS handshake failed";
            case errc::tls_verify_failed:
                return "TLS certificate verify failed";
            case errc::tls_truncated:
                return "TLS truncated: the peer ended TCP without close_notify, so the data may "
                       "be cut short";
            case errc::tls_protocol_error:
                return "TLS protocol error";
            case errc::tls_config_error:
                return "TLS configuration error";
            case errc::tls_not_established:
                return "TLS is not established: the handshake has not completed";
        }
        return "unknown orderly error " + std::to_string(value);
    }
    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<errc>(value)) {
            case errc::timed_out:
                return std::errc::timed_out;
            case errc::peer_reset:
                return std::errc::connection_reset;
            case errc::invalid_argument:
                return std::errc::invalid_argument;
            case errc::not_open:
                return std::errc::bad_file_descriptor;
            case errc::aborted:
                return std::errc::connection_aborted;
            default:
                return {value, *this};
        }
    }
};

}  // namespace

const std::error_category& orderly_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace orderly
