// The byte pattern every workload sends: byte i of a connection's stream is table[i % period].
// The period is prime, so a lost, repeated or reordered chunk of any power-of-two size shows up as
// a mismatch, and any window of up to 1 MiB is contiguous in the table (no per-byte arithmetic on
// the hot path, just memcmp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace load {

constexpr std::size_t pattern_period = 65521;
constexpr std::size_t pattern_window = std::size_t{1} << 20;

class pattern {
  public:
    pattern() : bytes_(pattern_period + pattern_window) {
        for (std::size_t i = 0; i < bytes_.size(); ++i) {
            auto x = static_cast<std::uint32_t>((i % pattern_period) * 2654435761u);
            x ^= x >> 15;
            bytes_[i] = static_cast<char>(x & 0xff);
        }
    }
    // The bytes from stream offset `offset` on; at least pattern_window of them are contiguous.
    [[nodiscard]] const char* at(std::uint64_t offset) const {
        return bytes_.data() + offset % pattern_period;
    }
    [[nodiscard]] bool matches(std::uint64_t offset, const char* data, std::size_t n) const {
        while (n > 0) {
            std::size_t chunk = std::min(n, pattern_window);
            if (std::memcmp(at(offset), data, chunk) != 0) return false;
            offset += chunk;
            data += chunk;
            n -= chunk;
        }
        return true;
    }

  private:
    std::vector<char> bytes_;
};

inline const pattern& the_pattern() {
    static const pattern p;
    return p;
}

}  // namespace load
