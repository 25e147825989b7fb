#pragma once
// The loops that stream_socket and tls_stream share: send_all over send(), and read_to_end's
// reading up to a limit over recv(). Each stream keeps what differs: how it proves that the
// limit was exceeded (a peek at the socket, or at what TLS has decrypted).

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

#include "orderly/core/deadline.hpp"
#include "orderly/net/stream_socket.hpp"

namespace orderly::detail {

// send() until all of `data` went or an error; r.bytes is exact either way.
template <class Stream>
transfer_result send_all_loop(Stream& s, std::span<const std::byte> data, deadline until) {
    transfer_result r;
    while (r.bytes < data.size()) {
        auto n = s.send(data.subspan(r.bytes), until);
        if (!n) {
            r.set_error(n.error());
            break;
        }
        r.bytes += *n;
    }
    return r;
}

// recv() into `out` until end-of-stream, an error or `limit` bytes. True when it stopped at the
// limit with neither (the caller then finds out whether more would have come).
template <class Stream>
bool read_up_to(Stream& s, std::string& out, deadline until, std::size_t limit,
                transfer_result& r) {
    char chunk[16384];
    while (r.bytes < limit) {
        const std::size_t want = std::min(sizeof chunk, limit - r.bytes);
        auto n = s.recv(std::as_writable_bytes(std::span(chunk, want)), until);
        if (!n) {
            r.set_error(n.error());
            return false;
        }
        if (*n == 0) return false;
        out.append(chunk, *n);
        r.bytes += *n;
    }
    return true;
}

}  // namespace orderly::detail
