// DatapathPlan: operations run in order; when a later step fails (or one of them
// throws), undo takes back exactly what ran, newest first.
#include "agent/lazy/datapath_plan.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using test::FakeHold;
using test::Log;

std::vector<IpPrefix> prefixes(std::initializer_list<const char*> texts) {
    std::vector<IpPrefix> out;
    for (const char* t : texts) out.push_back(*IpPrefix::parse(t));
    return out;
}

// FakeHold that throws on the n-th add_routes (1-based), once.
class FailingHold : public FakeHold {
  public:
    using FakeHold::FakeHold;
    void add_routes(uint32_t id, std::span<const IpPrefix> r) override {
        if (++adds == fail_at) throw std::runtime_error("LPM map full");
        FakeHold::add_routes(id, r);
    }
    int adds = 0, fail_at = 0;
};

struct Plans : ::testing::Test {
    Log log;
    FailingHold hold{log};
    const std::vector<IpPrefix> a = prefixes({"10.0.0.1/32", "10.1.0.0/16"});
    const std::vector<IpPrefix> b = prefixes({"10.0.0.2/32"});

    void SetUp() override {
        hold.install_peer(1, a, SlotMode::Pass);
        hold.adds = 0;
        log.entries.clear();
    }
    // Peer 1 gives 10.1.0.0/16 to a new peer 2; peer 1 gains 10.9.0.0/16.
    DatapathPlan move_prefix() {
        DatapathPlan plan;
        plan.remove_routes(1, prefixes({"10.1.0.0/16"}));
        plan.install_peer(2, b, SlotMode::Hold);
        plan.add_routes(2, prefixes({"10.1.0.0/16"}));
        plan.add_routes(1, prefixes({"10.9.0.0/16"}));
        return plan;
    }
};

TEST_F(Plans, RunAppliesInOrder) {
    DatapathPlan plan = move_prefix();
    EXPECT_EQ(plan.size(), 4u);
    plan.run(hold);
    EXPECT_EQ(hold.routes,
              (std::map<std::string, uint32_t>{
                  {"10.0.0.1/32", 1}, {"10.9.0.0/16", 1}, {"10.0.0.2/32", 2}, {"10.1.0.0/16", 2}}));
    EXPECT_EQ(hold.mode.at(2), SlotMode::Hold);
}

TEST_F(Plans, UndoRestoresWhatWasThere) {
    auto routes = hold.routes;
    auto modes = hold.mode;
    DatapathPlan plan = move_prefix();
    plan.run(hold);
    plan.undo(hold);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_EQ(hold.mode, modes);
    EXPECT_EQ(log.entries, (std::vector<std::string>{"dp install 2", "dp remove 2"}));
    plan.undo(hold);  // nothing left to undo
    EXPECT_EQ(hold.routes, routes);
}

TEST_F(Plans, AnOperationThatThrowsUndoesTheOnesBefore) {
    auto routes = hold.routes;
    auto modes = hold.mode;
    hold.fail_at = 3;  // the fourth operation: peer 1 gaining 10.9.0.0/16
    DatapathPlan plan = move_prefix();
    EXPECT_THROW(plan.run(hold), std::runtime_error);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_EQ(hold.mode, modes);
}

TEST_F(Plans, AFailingUndoStillUndoesTheRest) {
    DatapathPlan plan;
    plan.install_peer(2, b, SlotMode::Hold);
    plan.remove_routes(1, prefixes({"10.1.0.0/16"}));
    plan.run(hold);
    hold.fail_at = hold.adds + 1;  // giving 10.1.0.0/16 back fails
    plan.undo(hold);
    EXPECT_EQ(hold.routes.count("10.1.0.0/16"), 0u);
    EXPECT_EQ(hold.mode.count(2), 0u);  // the install before it was still undone
}

TEST_F(Plans, EmptyRouteListsAreNoOperations) {
    DatapathPlan plan;
    plan.add_routes(1, {});
    plan.remove_routes(1, std::vector<IpPrefix>{});
    EXPECT_EQ(plan.size(), 0u);
}

}  // namespace
}  // namespace nb
