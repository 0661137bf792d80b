// `nbagent status` text output for the never-lazy, group, back-off, threshold and
// datapath-order fields.
// (The basic summary and table layout is covered in cli_test.cpp.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/control/protocol.hpp"
#include "cli/commands.hpp"

namespace nb::cli {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    for (size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        lines.push_back(text.substr(pos, nl - pos));
    }
    return lines;
}

const std::string kKeyA = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyB = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=";
const std::string kKeyC = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA=";

AgentStatus three_peers() {
    AgentStatus s;
    s.interface = "wg0";
    s.wg_backend = WgBackend::Kernel;
    s.trigger = TriggerEngine::Bpf;
    s.inactivity_threshold_ms = 15 * 60'000;
    PeerStatus a;  // never lazy, in two groups
    a.public_key = kKeyA;
    a.state = PeerState::Connected;
    a.lazy = false;
    a.groups = {"db", "ops"};
    PeerStatus b;  // backing off after failed wakes
    b.public_key = kKeyB;
    b.failures = 3;
    b.retry_in_ms = 3'200;
    b.last_error = "wake hook exited 1:\nno route\x1b[0m";
    PeerStatus c;  // plain lazy peer, no group
    c.public_key = kKeyC;
    s.peers = {a, b, c};
    return s;
}

TEST(StatusFormat, SummaryShowsInactivityThreshold) {
    AgentStatus s = three_peers();
    std::string out;
    write_status_summary(s, out);
    EXPECT_NE(out.find("lazy:       on (inactivity threshold 15m)\n"), std::string::npos) << out;

    for (auto [ms, text] : std::vector<std::pair<int64_t, std::string>>{
             {90'000, "1m30s"}, {5'400'000, "1h30m"}, {2 * 3'600'000, "2h"}, {1'500, "1s500ms"}}) {
        s.inactivity_threshold_ms = ms;
        s.lazy = false;
        out.clear();
        write_status_summary(s, out);
        EXPECT_NE(out.find("lazy:       off (inactivity threshold " + text + ")\n"),
                  std::string::npos)
            << out;
    }

    // An older agent does not report it (0): no made-up "0s".
    s.inactivity_threshold_ms = 0;
    out.clear();
    write_status_summary(s, out);
    EXPECT_NE(out.find("lazy:       off\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("inactivity"), std::string::npos) << out;
}

TEST(StatusFormat, TableMarksNeverLazyAndShowsGroups) {
    const AgentStatus s = three_peers();
    std::string table;
    write_peer_table(s, 5'000, table);
    const auto lines = lines_of(table);
    ASSERT_GE(lines.size(), 4u) << table;
    const size_t state_col = lines[0].find("STATE");
    const size_t groups_col = lines[0].find("GROUPS");
    ASSERT_NE(groups_col, std::string::npos) << table;
    EXPECT_EQ(lines[1].substr(state_col, 22), "Connected (never lazy)") << table;
    EXPECT_EQ(lines[2].substr(state_col, 5), "Idle ") << table;
    EXPECT_EQ(lines[1].substr(groups_col, 7), "db,ops ") << table;
    EXPECT_EQ(lines[3].substr(groups_col, 2), "- ") << table;
    // Columns after GROUPS still line up.
    const size_t endpoint_col = lines[0].find("ENDPOINT");
    EXPECT_EQ(lines[1].substr(endpoint_col, 2), "- ") << table;
    EXPECT_EQ(lines[3].substr(endpoint_col, 2), "- ") << table;
}

TEST(StatusFormat, GroupsColumnOnlyWhenSomePeerHasGroups) {
    AgentStatus s = three_peers();
    for (auto& p : s.peers) p.groups.clear();
    std::string table;
    write_peer_table(s, 5'000, table);
    const auto lines = lines_of(table);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0].find("GROUPS"), std::string::npos) << table;
    // STATE is followed by FOR (how long), then directly by ENDPOINT.
    const size_t state_col = lines[0].find("STATE");
    const size_t for_col = lines[0].find("FOR");
    EXPECT_EQ(for_col, state_col + std::string("Connected (never lazy)").size() + 2) << table;
    EXPECT_EQ(lines[0].find("ENDPOINT"), for_col + std::string("FOR").size() + 2) << table;
}

TEST(StatusFormat, WireGuardFiguresWithTheAgeOfTheirRead) {
    AgentStatus s = three_peers();
    const int64_t now = 1'700'000'100'000;
    s.peers[0].rx_bytes = 1536;
    s.peers[0].tx_bytes = 42;
    s.peers[0].last_handshake_ms = now - 75'000;
    s.peers[0].wg_read_ms = now - 4'000;
    s.peers[1].wg_read_ms = now - 9'000;  // read longer ago: the line below says so
    std::string table;
    write_peer_table(s, now, table);
    const auto lines = lines_of(table);
    ASSERT_GE(lines.size(), 6u) << table;
    const size_t hs_col = lines[0].find("HANDSHAKE");
    const size_t rxtx_col = lines[0].find("RX / TX");
    ASSERT_NE(hs_col, std::string::npos) << table;
    ASSERT_NE(rxtx_col, std::string::npos) << table;
    EXPECT_EQ(lines[1].substr(hs_col, 7), "1m ago ") << table;
    EXPECT_EQ(lines[1].substr(rxtx_col, 15), "1.50 KiB / 42 B") << table;
    EXPECT_EQ(lines[2].substr(hs_col, 6), "never ") << table;
    EXPECT_EQ(lines[2].substr(rxtx_col, 9), "0 B / 0 B") << table;
    EXPECT_EQ(lines[5], "handshake and rx / tx as WireGuard counted them 9s ago or later") << table;

    // Nothing read (all idle since WireGuard forgot them): no such line.
    for (auto& p : s.peers) p.wg_read_ms = 0;
    table.clear();
    write_peer_table(s, now, table);
    EXPECT_EQ(table.find("WireGuard counted"), std::string::npos) << table;
}

TEST(StatusFormat, WakeErrorsListedBelowTheTable) {
    AgentStatus s = three_peers();
    PeerStatus d;  // failed once, not backing off any more
    d.public_key = "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDA=";
    d.failures = 1;
    d.last_error = "timeout";
    s.peers.push_back(d);
    std::string table;
    write_peer_table(s, 5'000, table);
    const auto lines = lines_of(table);
    // Header, four rows, blank, "wake errors:", one line per failing peer.
    ASSERT_EQ(lines.size(), 9u) << table;
    EXPECT_EQ(lines[5], "");
    EXPECT_EQ(lines[6], "wake errors:");
    // Control characters from the message cannot break the line or reach the terminal.
    EXPECT_EQ(lines[7], kKeyB + ": wake hook exited 1: no route [0m (retry in 4s, 3 failures)");
    EXPECT_EQ(lines[8], d.public_key + ": timeout (1 failure)");

    // No failing peer: nothing below the table.
    for (auto& p : s.peers) {
        p.failures = 0;
        p.retry_in_ms = 0;
        p.last_error.clear();
    }
    table.clear();
    write_peer_table(s, 5'000, table);
    EXPECT_EQ(lines_of(table).size(), 5u) << table;
    EXPECT_EQ(table.find("wake errors"), std::string::npos);
}

TEST(StatusFormat, DatapathOrderSaysWhoRunsBeforeOurs) {
    AgentStatus s = three_peers();
    std::string out;
    write_status_summary(s, out);  // unchecked, no error: an old agent, or no tc programs
    EXPECT_EQ(out.find("datapath:"), std::string::npos) << out;

    s.datapath_order.checked = true;
    out.clear();
    write_status_summary(s, out);
    EXPECT_NE(out.find("\ndatapath:   first on ingress and egress\n"), std::string::npos) << out;

    s.datapath_order.ahead = {{"egress", AttachMode::Tcx, 123, "foreign_pass", 0, 0}};
    out.clear();
    write_status_summary(s, out);
    EXPECT_NE(out.find("\ndatapath:   warning: 1 program runs before ours on egress (tcx id 123, "
                       "name foreign_pass)\n            first on ingress\n"),
              std::string::npos)
        << out;

    s.datapath_order.ahead.push_back({"egress", AttachMode::Clsact, 0, "u32\n", 1, 0x800});
    s.datapath_order.ahead.push_back({"ingress", AttachMode::Clsact, 45, "other", 1, 1});
    out.clear();
    write_status_summary(s, out);
    EXPECT_NE(
        out.find("\ndatapath:   warning: 1 program runs before ours on ingress (clsact pref 1 "
                 "handle 0x1, id 45, name other)\n"
                 "            warning: 2 programs run before ours on egress (tcx id 123, name "
                 "foreign_pass; clsact pref 1 handle 0x800, name u32 )\n"),
        std::string::npos)
        << out;
    EXPECT_EQ(out.find("first on"), std::string::npos) << out;

    s.datapath_order = {};
    s.datapath_order.error = "our tcx egress program is not attached";
    out.clear();
    write_status_summary(s, out);
    EXPECT_NE(out.find("\ndatapath:   order unknown: our tcx egress program is not attached\n"),
              std::string::npos)
        << out;
}

TEST(StatusFormat, NewFieldsSurviveTheWireIntoTheTable) {
    // What `status -d` does with a reply: the fast serializer, parse, format.
    AgentStatus s = three_peers();
    s.datapath_order.checked = true;
    s.datapath_order.ahead = {{"ingress", AttachMode::Tcx, 9, "early", 0, 0}};
    const auto reply = nlohmann::json::parse(status_reply_text(s));
    const AgentStatus got = agent_status_from_json(reply.at("status"));
    std::string text;
    write_status_summary(got, text);
    write_peer_table(got, 5'000, text);
    EXPECT_NE(text.find("inactivity threshold 15m"), std::string::npos) << text;
    EXPECT_NE(text.find("Connected (never lazy)"), std::string::npos) << text;
    EXPECT_NE(text.find("db,ops"), std::string::npos) << text;
    EXPECT_NE(text.find(kKeyB + ": wake hook exited 1"), std::string::npos) << text;
    EXPECT_NE(text.find("warning: 1 program runs before ours on ingress (tcx id 9, name early)"),
              std::string::npos)
        << text;
}

}  // namespace
}  // namespace nb::cli
