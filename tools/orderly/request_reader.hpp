#pragma once
// How `orderly serve reply` reads a request: until the peer's EOF, or only until --read K bytes
// arrived. Pure bookkeeping (no sockets), so that the decision "the request is complete, reply
// now" can be tested and fuzzed on its own (fuzz/fuzz_serve_request.cpp).

#include <cstddef>
#include <cstdint>
#include <optional>

namespace orderly::cli {

class request_reader {
  public:
    // `limit`: --read K; nullopt reads until the peer's EOF. With a limit of 0 the request is
    // complete before anything arrives: the reply starts as soon as the connection opens.
    explicit request_reader(std::optional<std::uint64_t> limit) noexcept;

    // What one event meant for the request.
    enum class step {
        reading,   // the request goes on
        complete,  // this event completed it: start the reply (returned at most once)
        after,     // it was already complete (bytes past --read that were taken with the last
                   // chunk, or arrived before reading paused)
    };

    // `n` bytes arrived in one chunk (reads come in chunks, so the chunk that reaches the limit
    // may carry more than the request needs; those bytes count as beyond_request()).
    step feed(std::size_t n) noexcept;
    // The peer half-closed: whatever arrived so far is the request.
    step peer_eof() noexcept;

    [[nodiscard]] bool complete() const noexcept { return complete_; }
    // Bytes that belong to the request: never more than the limit.
    [[nodiscard]] std::uint64_t request_bytes() const noexcept { return request_bytes_; }
    // Bytes that arrived after the request was complete.
    [[nodiscard]] std::uint64_t beyond_request() const noexcept { return beyond_; }
    [[nodiscard]] std::optional<std::uint64_t> limit() const noexcept { return limit_; }

  private:
    std::optional<std::uint64_t> limit_;
    std::uint64_t request_bytes_ = 0;
    std::uint64_t beyond_ = 0;
    bool complete_ = false;
};

}  // namespace orderly::cli
