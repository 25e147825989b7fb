#include "orderly/core/deadline.hpp"

namespace orderly {

clock::duration deadline::remaining() const noexcept {
    if (is_never()) return clock::duration::max();
    const auto now = clock::now();
    return now >= at_ ? clock::duration::zero() : at_ - now;
}

int deadline::poll_timeout_ms() const noexcept {
    if (is_never()) return -1;
    const auto left = remaining();
    if (left <= clock::duration::zero()) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace orderly
