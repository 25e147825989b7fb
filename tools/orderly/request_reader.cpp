// The bookkeeping of serve reply's request (see request_reader.hpp).

#include "request_reader.hpp"

#include <algorithm>

namespace orderly::cli {

request_reader::request_reader(std::optional<std::uint64_t> limit) noexcept
    : limit_(limit), complete_(limit.has_value() && *limit == 0) {}

request_reader::step request_reader::feed(std::size_t n) noexcept {
    if (complete_) {
        beyond_ += n;
        return step::after;
    }
    if (!limit_) {
        request_bytes_ += n;
        return step::reading;
    }
    // Compared as "how much is missing" so that a huge chunk count cannot overflow the sum.
    const std::uint64_t missing = *limit_ - request_bytes_;
    const std::uint64_t taken = std::min<std::uint64_t>(n, missing);
    request_bytes_ += taken;
    beyond_ += n - taken;
    if (request_bytes_ < *limit_) return step::reading;
    complete_ = true;
    return step::complete;
}

request_reader::step request_reader::peer_eof() noexcept {
    if (complete_) return step::after;
    complete_ = true;
    return step::complete;
}

}  // namespace orderly::cli
