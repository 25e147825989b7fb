#include "orderly/diag/json.hpp"

#include <gtest/gtest.h>

#include <string>

#include "diag_test_util.hpp"

namespace orderly::diag {
namespace {

using test::held;
using test::tcp_row;

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

TEST(json, a_tcp_socket_has_every_field_with_null_for_what_is_unknown) {
    auto k = tcp_row(tcp_state::close_wait, "127.0.0.1:8000", "[::1]:5000", 11);
    k.recv_queue = 6;
    k.shutdown = shutdown_read;
    k.uid = 1000;
    k.tcp->last_ack_recv_ms = 1234;
    const std::string j = to_json(held(k, 5, 1234));
    EXPECT_EQ(j.front(), '{');
    EXPECT_EQ(j.back(), '}');
    for (
        const char* part :
        {R"("fd":5,"inode":11,"cookie":1011,"kind":"tcp","state":"half_closed_by_peer",)",
         R"("kernel_state":"CLOSE_WAIT","shutdown":"-->","local":"127.0.0.1:8000",)",
         R"("peer":"[::1]:5000","recv_queue":6,"send_queue":0,"unread_bytes":5,"timer":"off",)",
         R"("uid":1000,"quiet_for_ms":1234,"send_stalled_for_ms":null,"unix_peer_inode":null,"unix_peer_gone":null,)",
         R"("last_ack_recv_ms":1234,)", R"("peer_window":null})", R"("memory":null})"}) {
        EXPECT_TRUE(contains(j, part)) << part << "\nin " << j;
    }
    auto orphan = k;
    orphan.inode = 0;
    orphan.shutdown.reset();
    orphan.uid.reset();
    const std::string o = to_json(held(orphan, -1, -1));
    EXPECT_TRUE(contains(o, R"("fd":null)")) << o;
    EXPECT_TRUE(contains(o, R"("shutdown":null)")) << o;
    EXPECT_TRUE(contains(o, R"("uid":null)")) << o;
    EXPECT_TRUE(contains(o, R"("quiet_for_ms":null)")) << o;
}

TEST(json, unix_names_are_escaped_into_valid_utf8) {
    auto k = test::unix_row(3, 4);
    // An abstract name may hold any byte: a quote, a control character, bytes that are no UTF-8,
    // and a valid two-byte character.
    k.local = endpoint::unix_abstract(std::string("a\"b\x01\xff\xc3\xa9", 7)).value();
    k.unix_peer_gone = true;
    const std::string j = to_json(held(k, 7, -1));
    EXPECT_TRUE(contains(j, "\"local\":\"unix:@a\\\"b\\u0001\\ufffd\xc3\xa9\"")) << j;
    EXPECT_TRUE(contains(j, R"("peer":null)")) << j;
    EXPECT_TRUE(contains(j, R"("unix_peer_inode":4,"unix_peer_gone":true)")) << j;
    EXPECT_TRUE(contains(j, R"("tcp_info":null)")) << j;
}

TEST(json, a_process_has_every_top_level_field_in_order) {
    process_snapshot p;
    p.pid = 42;
    p.name = "srv";
    p.command = "srv -x";
    p.user = "alice";
    p.uid = 1000;
    p.taken = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
    p.descriptors = {10, 4, 1, {1024, std::nullopt}};
    p.connections.push_back(
        held(tcp_row(tcp_state::close_wait, "127.0.0.1:1", "127.0.0.1:2", 1), 5, 10));
    p.counters.listen_overflows = 3;
    p.findings.push_back({finding_kind::close_wait,
                          1,
                          {5},
                          {1},
                          std::chrono::milliseconds(10),
                          "one \"leak\"",
                          {"line 1", "line 2"},
                          "close it"});
    p.notes = {"a note"};
    const std::string j = to_json(p);
    const char* keys[] = {"pid",          "name",        "command",  "user",      "uid",
                          "time_unix_ms", "descriptors", "states",   "listeners", "connections",
                          "orphans",      "counters",    "findings", "notes",     "changes"};
    std::size_t at = 0;
    for (const char* key : keys) {
        const auto pos = j.find("\"" + std::string(key) + "\":", at);
        ASSERT_NE(pos, std::string::npos) << key << " in " << j;
        at = pos;
    }
    EXPECT_TRUE(contains(j,
                         R"({"pid":42,"name":"srv","command":"srv -x","user":"alice","uid":1000,)"
                         R"("time_unix_ms":1700000000123,)"))
        << j;
    EXPECT_TRUE(contains(j, R"("descriptors":{"open":10,"sockets":4,"other_sockets":1,)"
                            R"("unconnected_tcp":0,"soft_limit":1024,"hard_limit":null})"))
        << j;
    EXPECT_TRUE(contains(j, R"("states":{"opening":0,"open":0,"half_closed_by_peer":1,)"
                            R"("half_closed_by_us":0,"closing":0,"closed":0,"listening":0})"))
        << j;
    EXPECT_TRUE(contains(j, R"("listeners":[],)")) << j;
    EXPECT_TRUE(contains(j, R"("counters":{"listen_overflows":3,"listen_drops":null,)")) << j;
    EXPECT_TRUE(contains(j, R"("findings":[{"kind":"close_wait","count":1,"fds":[5],"inodes":[1],)"
                            R"("quiet_for_ms":10,"summary":"one \"leak\"",)"
                            R"("evidence":["line 1","line 2"],"advice":"close it"}])"))
        << j;
    EXPECT_TRUE(contains(j, R"("notes":["a note"],"changes":[]})")) << j;
}

}  // namespace
}  // namespace orderly::diag
