#pragma once
// Shared by the TLS fault-injection tests: contexts from a self-signed certificate and reads of a
// known amount from a tls_stream.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <span>
#include <string>

#include "fault_common.hpp"
#include "orderly/tls/tls_context.hpp"
#include "orderly/tls/tls_stream.hpp"
#include "unit/tls/tls_support.hpp"

namespace orderly::test::faults {

// A self-signed certificate (named "localhost", which the clients verify: the namespaces'
// addresses are not in it) and both contexts.
struct tls_setup {
    cert_dir certs;
    tls_context server = make_server();
    tls_context client = make_client();

  private:
    tls_context make_server() const {
        tls_server_config s;
        s.cert_file = certs.cert;
        s.key_file = certs.key;
        return tls_context::server(s).value();
    }
    tls_context make_client() const {
        tls_client_config c;
        c.ca_file = certs.cert;
        return tls_context::client(c).value();
    }
};

// Decrypts from `s` until at least `want` bytes arrived, the peer's close_notify, an error or the
// deadline; returns the count (bytes appended to `out` when given).
inline std::size_t tls_read_at_least(tls_stream& s, std::size_t want, deadline until,
                                     std::string* out = nullptr) {
    std::size_t got = 0;
    char buf[16384];
    while (got < want) {
        auto n = s.recv(std::span<char>(buf), until);
        if (!n || *n == 0) break;
        got += *n;
        if (out != nullptr) out->append(buf, *n);
    }
    return got;
}

// The whole report on stdout, for the TLS rows of the table in docs/reliability.md.
inline void note_report(const close_report& r) {
    std::printf("[report] %s\n", r.to_string().c_str());
}

inline tls_close_options tls_close_within(clock::duration timeout) {
    tls_close_options o;
    o.timeout = timeout;
    return o;
}

}  // namespace orderly::test::faults
