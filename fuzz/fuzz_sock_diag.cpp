// fuzz_sock_diag: orderly::diag::parse_reply on arbitrary bytes, as one datagram of a netlink
// sock_diag reply, and everything the doctor builds from what it returns.
// Properties: parsing never reads past the input and gives the same result twice; an error is
// EBADMSG naming a byte offset inside the input, or an errno the kernel sent; every message up to a
// boundary parses alone to a prefix of the sockets; each socket has a kind and prints; joined to a
// process that holds every inode, diagnosed and printed as JSON, it yields valid JSON with one
// finding per kind at most, each naming only sockets of the process.

#include <linux/netlink.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <span>
#include <string>

#include "fuzz_check.hpp"
#include "json_check.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/diag/json.hpp"
#include "orderly/diag/process_snapshot.hpp"
#include "orderly/diag/sock_diag.hpp"

namespace {

using namespace orderly::diag;

// The sequence number of the first message, so that most inputs get past that check.
std::uint32_t first_seq(std::span<const std::byte> b) {
    if (b.size() < sizeof(nlmsghdr)) return 0;
    std::uint32_t seq = 0;
    std::memcpy(&seq, b.data() + offsetof(nlmsghdr, nlmsg_seq), sizeof seq);
    return seq;
}

void check_error(const orderly::error_info& e, std::size_t size) {
    FUZZ_CHECK(e.code);
    FUZZ_CHECK(!e.message().empty());
    if (e.detail.rfind("the kernel ", 0) == 0) return;  // an errno the kernel sent
    FUZZ_CHECK(e.code == orderly::errno_code(EBADMSG));
    constexpr std::string_view lead = "malformed sock_diag reply at byte ";
    FUZZ_CHECK(e.detail.rfind(lead, 0) == 0);
    const std::size_t at = std::stoul(e.detail.substr(lead.size()));
    FUZZ_CHECK(at < size);
}

// Whole messages from the start, cut where the first one ends: a prefix of the sockets.
void check_prefix(std::span<const std::byte> b, std::uint32_t seq, const reply_part& whole) {
    if (whole.done || b.size() < sizeof(nlmsghdr)) return;
    std::uint32_t len = 0;
    std::memcpy(&len, b.data(), sizeof len);
    const std::size_t cut = (static_cast<std::size_t>(len) + 3) & ~std::size_t{3};
    if (cut >= b.size()) return;
    auto part = parse_reply(b.first(cut), seq);
    FUZZ_CHECK(part.has_value());
    FUZZ_CHECK(part->sockets.size() <= whole.sockets.size());
    for (std::size_t i = 0; i < part->sockets.size(); ++i) {
        FUZZ_CHECK(part->sockets[i].inode == whole.sockets[i].inode);
        FUZZ_CHECK(part->sockets[i].cookie == whole.sockets[i].cookie);
    }
}

void check_doctor(std::vector<kernel_socket> table) {
    link_unix_peers(table);
    process_info p;
    p.pid = 4242;
    p.name = "fuzz";
    p.open_descriptors = table.size() + 3;
    p.limit.soft = table.size() + 4;
    int fd = 3;
    std::set<std::uint64_t> inodes;
    for (const auto& k : table) {
        FUZZ_CHECK(!to_string(k.kind).empty());
        FUZZ_CHECK(!k.local.to_string().empty());
        FUZZ_CHECK(!k.peer.to_string().empty());
        (void)classify(k);
        if (k.inode != 0 && inodes.insert(k.inode).second) {
            p.sockets.push_back({fd++, k.inode, {}});
        }
    }
    p.sockets.push_back({fd++, 0, "TCP"});  // in no table: closed_not_released
    auto snap = assemble(p, table);
    FUZZ_CHECK(snap.listeners.size() + snap.connections.size() <= p.sockets.size());
    snap.findings = diagnose(snap, {std::chrono::milliseconds(0)});
    std::set<finding_kind> kinds;
    for (const auto& f : snap.findings) {
        FUZZ_CHECK(kinds.insert(f.kind).second);
        FUZZ_CHECK(!f.summary.empty() && !f.advice.empty());
        for (const int x : f.fds)
            FUZZ_CHECK(x >= 3 && x < fd);
        FUZZ_CHECK(f.fds.size() <= f.count);
    }
    const std::string json = to_json(snap);
    FUZZ_CHECK(orderly::fuzz::is_valid_json(json));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const std::uint32_t seq = first_seq(bytes);
    auto part = parse_reply(bytes, seq);
    auto again = parse_reply(bytes, seq);
    FUZZ_CHECK(part.has_value() == again.has_value());
    if (!part) {
        check_error(part.error(), size);
        FUZZ_CHECK(again.error().detail == part.error().detail);
        return 0;
    }
    FUZZ_CHECK(part->sockets.size() == again->sockets.size());
    FUZZ_CHECK(part->done == again->done && part->interrupted == again->interrupted);
    // The smallest message with a socket is a header and a unix_diag_msg.
    FUZZ_CHECK(part->sockets.size() * (sizeof(nlmsghdr) + 16) <= size);
    check_prefix(bytes, seq, *part);
    check_doctor(std::move(part->sockets));
    return 0;
}
