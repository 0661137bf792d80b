// The crash-recovery state file: round trip, merge into adopted peers, and clear errors
// for a damaged file. Real files in a temporary directory.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/lazy/state_file.hpp"
#include "base/blocking.hpp"

namespace nb {
namespace {

class StateFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/nbstate.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = tmpl;
        path = state_file_path(dir, "wg0");
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    void write(const std::string& text) { std::ofstream(path) << text; }
    std::string dir, path;
};

PeerSpec peer(uint8_t n, const char* ep, uint16_t ka) {
    PeerSpec p;
    p.wg.public_key.bytes.fill(n);
    if (ep) p.endpoint = ep;
    p.keepalive = ka;
    return p;
}

TEST_F(StateFileTest, RoundTripAndMergeIntoAdoptedPeers) {
    const auto writes = [] {
        return blocking_snapshot()[static_cast<size_t>(BlockingKind::StateFile)].waits.count;
    };
    const uint64_t before = writes();
    save_peer_state(path, {peer(1, "10.0.0.1:51820", 25), peer(2, "vpn.example:51820", 0),
                           peer(3, nullptr, 0)});
    EXPECT_EQ(writes(), before + 1);  // the loop's wait for the disk
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // endpoints are the operator's business only
    SavedPeers saved = load_peer_state(path);
    EXPECT_EQ(saved.size(), 2u);  // peer 3 had nothing to remember

    // Adopted after a crash: idle peers came back from WireGuard without endpoints.
    // With the UDP engine they pointed at the dead agent's loopback listeners.
    std::vector<PeerSpec> adopted = {peer(1, "127.1.0.1:40000", 0), peer(2, "10.9.9.9:1", 0),
                                     peer(3, "127.1.0.3:40001", 0), peer(4, "127.0.0.1:5000", 0)};
    merge_saved_state(adopted, saved);
    EXPECT_EQ(adopted[0].endpoint.value_or(""), "10.0.0.1:51820");
    EXPECT_EQ(adopted[3].endpoint.value_or(""), "127.0.0.1:5000");  // not one of ours
    EXPECT_EQ(adopted[0].keepalive, 25);
    EXPECT_EQ(adopted[1].endpoint.value_or(""), "10.9.9.9:1");  // WireGuard's own wins
    EXPECT_FALSE(adopted[2].endpoint.has_value());
    remove_peer_state(path);
    EXPECT_TRUE(load_peer_state(path).empty());
}

TEST_F(StateFileTest, DamagedFilesNameTheProblem) {
    const std::pair<const char*, const char*> cases[] = {
        {"{not json", "not valid JSON"},
        {"[]", "\"peers\" list"},
        {R"({"peers":[{"endpoint":"1.2.3.4:5"}]})", "peers[0]: no public_key"},
        {R"({"peers":[{"public_key":"abc"}]})", "peers[0]: public_key is not"},
        {R"({"peers":[{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","keepalive":70000}]})",
         "bad keepalive"},
        {R"({"peers":[{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","endpoint":5}]})",
         "bad endpoint"},
    };
    for (auto [text, want] : cases) {
        write(text);
        try {
            load_peer_state(path);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace nb
