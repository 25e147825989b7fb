#include "orderly/net/end_rules.hpp"

#include <cerrno>

#include "orderly/core/errc.hpp"

namespace orderly {

static_assert(ECONNRESET == 104 && EPIPE == 32, "is_reset_errno assumes Linux errno values");

end_verdict judge_error(int err, const end_facts& f) noexcept {
    if ((err == ENOTCONN || err == 0) && f.pending_error != 0) err = f.pending_error;
    if (is_reset_errno(err)) {
        if (f.read_shut && f.fin_sent) {
            return {close_outcome::unread_data_discarded,
                    make_error_code(errc::reset_after_shut_read)};
        }
        return {close_outcome::peer_reset, errno_code(err)};
    }
    return {close_outcome::error, errno_code(err)};
}

end_verdict judge_release(const end_facts& f) noexcept {
    if (f.pending_error != 0) return judge_error(f.pending_error, f);
    if (f.unsent > 0) return {close_outcome::unsent_data_discarded, {}};
    if (f.unread > 0) return {close_outcome::unread_data_discarded, {}};
    if (f.fin_sent && f.peer_eof && f.queues_known && f.unacked == 0) {
        return {close_outcome::clean, {}};
    }
    return {close_outcome::closed, {}};
}

}  // namespace orderly
