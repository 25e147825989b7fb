#pragma once
// What one connection of `orderly serve` does, kept apart from how connections are accepted and
// scheduled (a thread each for now, the event layer later) so that both can share it.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "orderly/orderly.hpp"

namespace orderly::cli {

enum class serve_mode { echo, discard, reply };
enum class reply_close { orderly, naive, abort };

struct serve_settings {
    serve_mode mode = serve_mode::echo;
    std::uint64_t reply_bytes = 0;            // reply: how much to send
    std::optional<std::uint64_t> read_bytes;  // reply: read only this much of the request
    reply_close close = reply_close::orderly;
    close_options graceful;  // for every orderly close
    std::optional<clock::duration> idle_timeout;
};

// Byte i of every reply, so clients can check what they received: 63 letters then a newline.
char reply_byte(std::uint64_t i) noexcept;

// Serves one accepted connection to its end and says how it ended. `stopping` asks it to finish
// early (graceful stop): it stops taking new work, flushes, and closes in order. Never throws.
close_report serve_connection(stream_socket s, const serve_settings& settings,
                              const std::atomic<bool>& stopping);

}  // namespace orderly::cli
