#include "orderly/net/connect.hpp"

#include "orderly/core/errc.hpp"
#include "orderly/net/resolve.hpp"

namespace orderly {

result<stream_socket, error_info> connect(std::string_view where, clock::duration timeout) {
    auto addrs = resolve(where);
    if (!addrs) return fail(addrs.error().code, addrs.error().detail);
    if (addrs->empty()) {
        return fail(make_error_code(errc::resolve),
                    "'" + std::string(where) + "' resolved to no address");
    }
    std::error_code last;
    for (const endpoint& ep : *addrs) {
        auto s = stream_socket::connect(ep, timeout);
        if (s) return std::move(*s);
        last = s.error();
    }
    const std::string last_ep = addrs->back().to_string();
    std::string what = "connect to " + std::string(where);
    if (addrs->size() > 1 || last_ep != where) {
        what += " (" + last_ep + (addrs->size() > 1 ? " and others" : "") + ")";
    }
    return fail(last, what + ": " + last.message());
}

result<listener, error_info> listen(std::string_view where, const listen_options& opts) {
    resolve_options ro;
    ro.passive = true;
    // "*:port" is the common spelling of "any address"; getaddrinfo wants an empty host for it.
    if (where.starts_with("*:")) where.remove_prefix(1);
    auto addrs = resolve(where, ro);
    if (!addrs) return fail(addrs.error().code, addrs.error().detail);
    error_info last{make_error_code(errc::resolve),
                    "'" + std::string(where) + "' resolved to no address"};
    for (const endpoint& ep : *addrs) {
        auto l = listener::listen(ep, opts);
        if (l) return std::move(*l);
        last = l.error();
    }
    return fail(last.code, last.detail);
}

}  // namespace orderly
