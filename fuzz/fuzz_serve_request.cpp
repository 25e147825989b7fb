// fuzz_serve_request: how `orderly serve reply` reads a request (tools/orderly/request_reader),
// driven by arbitrary chunking. serve.cpp's callbacks only forward to the reader (on_data: feed,
// on_peer_eof: peer_eof, on_open: a --read 0 request is complete at once), so the decision "the
// request is complete, reply now" is all here, with no sockets and no timing.
//
// Input: byte 0 picks the limit (bit 0: --read given; bit 1: a limit near 2^64; bits 2-7 with
// bytes 1-2 the value), then events: 0xff = the peer's EOF, 0x80-0xfe = a chunk of (b - 0x80) *
// 997 bytes (as big reads), 0x00-0x7f = a chunk of that many bytes taken from the input.
// Properties: every byte fed is either request or beyond it; the request never exceeds the limit;
// the request is complete exactly when the limit is reached or the peer's EOF arrived, and
// `complete` is reported once, by the event that completed it; nothing is beyond an incomplete
// request.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>

#include "fuzz_check.hpp"
#include "request_reader.hpp"

namespace {

using orderly::cli::request_reader;

struct model {
    std::optional<std::uint64_t> limit;
    std::uint64_t fed = 0;
    bool eof = false;
    int completions = 0;  // `complete` steps seen, plus 1 for a request complete at the start
};

void check(const request_reader& r, const model& m) {
    FUZZ_CHECK(r.limit() == m.limit);
    FUZZ_CHECK(r.request_bytes() + r.beyond_request() == m.fed);
    if (m.limit) FUZZ_CHECK(r.request_bytes() <= *m.limit);
    const bool limit_reached = m.limit && r.request_bytes() == *m.limit;
    FUZZ_CHECK(r.complete() == (limit_reached || m.eof));
    if (!r.complete()) {
        FUZZ_CHECK(r.beyond_request() == 0);
        FUZZ_CHECK(r.request_bytes() == m.fed);
    }
    // With a limit, the request is the first `limit` bytes, or all of them at an earlier EOF.
    if (m.limit && !m.eof) FUZZ_CHECK(r.request_bytes() == std::min(m.fed, *m.limit));
    FUZZ_CHECK(m.completions == (r.complete() ? 1 : 0));
}

void check_step(request_reader::step s, bool was_complete, const request_reader& r) {
    if (was_complete) {
        FUZZ_CHECK(s == request_reader::step::after);
    } else if (r.complete()) {
        FUZZ_CHECK(s == request_reader::step::complete);
    } else {
        FUZZ_CHECK(s == request_reader::step::reading);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    model m;
    const std::uint64_t value =
        (std::uint64_t{data[0]} >> 2) << 16 | std::uint64_t{data[1]} << 8 | std::uint64_t{data[2]};
    if ((data[0] & 1) != 0) {
        m.limit = (data[0] & 2) != 0 ? std::numeric_limits<std::uint64_t>::max() - value : value;
    }
    request_reader r(m.limit);
    if (r.complete()) ++m.completions;  // serve's on_open starts the reply
    check(r, m);

    std::size_t i = 3;
    while (i < size) {
        const std::uint8_t b = data[i++];
        const bool was_complete = r.complete();
        request_reader::step s;
        if (b == 0xff) {
            s = r.peer_eof();
            m.eof = true;
        } else {
            std::size_t n = 0;
            if (b >= 0x80) {
                n = static_cast<std::size_t>(b - 0x80) * 997;
            } else {
                n = std::min<std::size_t>(b, size - i);
                i += n;
            }
            s = r.feed(n);
            m.fed += n;
        }
        if (s == request_reader::step::complete) ++m.completions;
        check_step(s, was_complete, r);
        check(r, m);
    }
    return 0;
}
