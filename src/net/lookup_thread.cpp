#include "lookup_thread.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <system_error>
#include <utility>

#include "orderly/core/errc.hpp"
#include "orderly/net/hosts_file.hpp"
#include "orderly/net/resolve.hpp"

namespace orderly::detail {
namespace {

bool is_ip_literal(std::string_view host) {
    const std::string addr(host.substr(0, host.find('%')));
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, addr.c_str(), buf) == 1 ||
           ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

}  // namespace

lookup_thread::lookup_thread(std::string host, std::string port, address_family family,
                             callback on_answer) {
    callback keep = on_answer;  // std::thread consumes its function even when it cannot start
    try {
        thread_ = std::thread([host = std::move(host), port = std::move(port), family,
                               cb = std::move(on_answer), done = answered_]() mutable {
            resolve_options opts;
            opts.family = family;
            cb(family, resolve(host, port, opts));
            cb = nullptr;  // let go of the caller's shared state before saying we are done
            done->store(true, std::memory_order_release);
        });
    } catch (const std::system_error& e) {
        keep(family,
             fail(e.code(), "cannot start a thread for the name lookup: " + std::string(e.what())));
    }
}

lookup_thread::~lookup_thread() {
    if (!thread_.joinable()) return;
    if (answered_->load(std::memory_order_acquire)) {
        thread_.join();
    } else {
        thread_.detach();
    }
}

result<connect_target, error_info> parse_connect_target(std::string_view where) {
    connect_target t;
    if (where.rfind("unix:", 0) == 0) {
        auto e = endpoint::parse(where);
        if (!e) return failure{e.error()};
        t.literal.push_back(*e);
        return t;
    }
    auto parts = split_host_port(where);
    if (!parts) return failure{parts.error()};
    if (is_ip_literal(parts->host)) {
        // No lookup: resolve() parses a literal (and a service name through getaddrinfo's
        // numeric path, which reads /etc/services but sends nothing).
        auto addrs = resolve(parts->host, parts->port);
        if (!addrs) return failure{addrs.error()};
        t.literal = std::move(*addrs);
        return t;
    }
    auto pinned = hosts_file_lookup(parts->host, parts->port);
    if (!pinned) return failure{pinned.error()};
    if (!pinned->empty()) {
        t.literal = std::move(*pinned);
        return t;
    }
    t.host = std::move(parts->host);
    t.port = std::move(parts->port);
    return t;
}

}  // namespace orderly::detail
