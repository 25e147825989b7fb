// fuzz_endpoint: endpoint::parse, split_host_port, to_string and from_sockaddr on arbitrary bytes.
// Properties: whatever parses prints to a text that parses back to an equal endpoint (and prints
// the same again); an accepted IP address contains no byte the parser did not look at (no NUL);
// every error is errc::address_parse with a message; split_host_port's parts come from the text.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/net/endpoint.hpp"

namespace {

using orderly::endpoint;

void check_round_trip(const endpoint& e) {
    const std::string printed = e.to_string();
    FUZZ_CHECK(!printed.empty());
    auto again = endpoint::parse(printed);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == e);
    FUZZ_CHECK(again->to_string() == printed);
    FUZZ_CHECK(again->port() == e.port());
    FUZZ_CHECK(again->domain() == e.domain());
}

void check_sockaddr(const endpoint& e) {
    // What the socket calls get must be what the endpoint says it is.
    FUZZ_CHECK(e.size() > 0 && e.size() <= sizeof(sockaddr_storage));
    FUZZ_CHECK(e.data()->sa_family == e.domain());
    auto copy = endpoint::from_sockaddr(e.data(), e.size());
    FUZZ_CHECK(copy.has_value());
    FUZZ_CHECK(*copy == e);
}

void fuzz_parse(std::string_view text) {
    auto e = endpoint::parse(text);
    if (!e) {
        FUZZ_CHECK(e.error().code == make_error_code(orderly::errc::address_parse));
        FUZZ_CHECK(!e.error().detail.empty());
        return;
    }
    FUZZ_CHECK(e->family() != orderly::address_family::none);
    check_sockaddr(*e);
    check_round_trip(*e);
    if (e->is_ip()) {
        FUZZ_CHECK(text.find('\0') == std::string_view::npos);
        FUZZ_CHECK(e->with_port(7).port() == 7);
        FUZZ_CHECK(e->with_port(e->port()) == *e);
        auto hp = orderly::split_host_port(e->to_string());
        FUZZ_CHECK(hp.has_value());
        FUZZ_CHECK(hp->host == e->host());
        FUZZ_CHECK(hp->port == std::to_string(e->port()));
    }
    if (e->family() == orderly::address_family::ipv4) {
        // inet_pton takes only the canonical dotted quad, so the host part is printed unchanged.
        FUZZ_CHECK(text.substr(0, text.rfind(':')) == e->host());
    }
}

void fuzz_split(std::string_view text) {
    auto hp = orderly::split_host_port(text);
    if (!hp) {
        FUZZ_CHECK(hp.error().code == make_error_code(orderly::errc::address_parse));
        FUZZ_CHECK(!hp.error().detail.empty());
        return;
    }
    FUZZ_CHECK(!hp->port.empty());
    // The parts are the text without its punctuation: "[HOST]:PORT" or "HOST:PORT", where an
    // unbracketed host has no colon (more than one colon means IPv6 without brackets).
    if (!text.empty() && text.front() == '[') {
        FUZZ_CHECK(text == "[" + hp->host + "]:" + hp->port);
        FUZZ_CHECK(hp->host.find_first_of("[]") == std::string::npos);
    } else {
        FUZZ_CHECK(text == hp->host + ":" + hp->port);
        FUZZ_CHECK(hp->host.find_first_of("[]:") == std::string::npos);
        FUZZ_CHECK(hp->port.find_first_of("[]:") == std::string::npos);
    }
}

// The same bytes as a kernel-filled address: never read past them, and an IP address prints to a
// text that parses back to it.
void fuzz_sockaddr(const std::uint8_t* data, std::size_t size) {
    sockaddr_storage ss{};
    const std::size_t n = std::min(size, sizeof ss);
    std::memcpy(&ss, data, n);
    auto e =
        endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), static_cast<socklen_t>(n));
    if (!e) return;
    FUZZ_CHECK(!e->to_string().empty());
    if (e->is_ip()) check_round_trip(*e);
}

// The Unix builders on the text: a path that fits prints as unix:PATH and parses back to it.
void fuzz_unix(std::string_view text) {
    if (auto p = endpoint::unix_path(text)) {
        check_sockaddr(*p);
        check_round_trip(*p);  // a path that starts with '@' prints as unix:./@...
    }
    if (auto a = endpoint::unix_abstract(text)) {
        check_sockaddr(*a);
        check_round_trip(*a);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    fuzz_parse(text);
    fuzz_split(text);
    fuzz_sockaddr(data, size);
    fuzz_unix(text);
    return 0;
}
