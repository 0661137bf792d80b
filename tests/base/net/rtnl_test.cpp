// rtnetlink calls inside a private network namespace, checked against `ip -j`.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/net/rtnl.hpp"
#include "tests/support/privileged.hpp"
#include "tests/wg/netns_util.hpp"

namespace nb {
namespace {

using test::NetNs;

// An address with its host bits, as an interface address (IpPrefix::parse clears them).
IpPrefix iface_addr(const char* addr, uint8_t len) {
    auto a = IpAddr::parse(addr);
    EXPECT_TRUE(a) << addr;
    return IpPrefix{a.value_or(IpAddr{}), len};
}

IpPrefix prefix(const char* text) {
    auto p = IpPrefix::parse(text);
    EXPECT_TRUE(p) << text;
    return p.value_or(IpPrefix{});
}

nlohmann::json ip_json(const NetNs& ns, const std::string& args) {
    auto r = ns.ip("-j " + args);
    EXPECT_EQ(r.status, 0) << args << ": " << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_discarded() ? nlohmann::json::array() : j;
}

bool has_route(const NetNs& ns, const std::string& table, const std::string& dst,
               const std::string& dev) {
    const char* family = dst.find(':') == std::string::npos ? "-4" : "-6";
    for (const auto& r : ip_json(ns, std::string(family) + " route show table " + table))
        if (r.value("dst", "") == dst && r.value("dev", "") == dev) return true;
    return false;
}

class RtnlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_REQUIRE_ROOT();
        ns_ = std::make_unique<NetNs>("rtnl");
        // Some kernels here lack the dummy module; ifb is an equally inert stand-in.
        std::string out;
        for (const char* kind : {"dummy", "ifb"}) {
            auto r = ns_->ip("link add " + dev_ + " type " + kind);
            if (r.status == 0) {
                kind_ = kind;
                break;
            }
            out += r.out;
        }
        ASSERT_FALSE(kind_.empty()) << out;
    }
    std::unique_ptr<NetNs> ns_;
    const std::string dev_ = "nbtest0";
    std::string kind_;
};

TEST_F(RtnlTest, LinkKindIndexMtuUp) {
    ns_->run_inside([&] {
        auto idx = link_index(dev_);
        ASSERT_TRUE(idx);
        EXPECT_FALSE(link_index("nbnosuchlink"));
        EXPECT_FALSE(link_index(std::string(20, 'x')));
        EXPECT_EQ(link_kind(dev_), kind_);
        EXPECT_EQ(link_kind("lo"), "");
        link_set_mtu(dev_, 1333);
        link_set_up(dev_);
    });
    auto links = ip_json(*ns_, "link show " + dev_);
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0]["mtu"], 1333);
    auto flags = links[0]["flags"];
    EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end()) << links.dump();
    auto lo = ip_json(*ns_, "link show lo");
    // Only the dummy changed: loopback is still down.
    auto lo_flags = lo[0]["flags"];
    EXPECT_EQ(std::find(lo_flags.begin(), lo_flags.end(), "UP"), lo_flags.end());
}

TEST_F(RtnlTest, AddressesAddAndList) {
    std::vector<IpPrefix> listed;
    ns_->run_inside([&] {
        link_set_up(dev_);
        addr_add(dev_, iface_addr("10.77.0.1", 24));
        addr_add(dev_, iface_addr("10.77.0.1", 24));  // already there: fine
        addr_add(dev_, iface_addr("fd00:77::1", 64));
        listed = addr_list(dev_);
        EXPECT_TRUE(addr_list("lo").empty());  // lo is down and has no address yet
    });
    auto has = [&](const IpPrefix& p) {
        return std::find(listed.begin(), listed.end(), p) != listed.end();
    };
    EXPECT_TRUE(has(iface_addr("10.77.0.1", 24)));
    EXPECT_TRUE(has(iface_addr("fd00:77::1", 64)));
    EXPECT_EQ(std::count_if(listed.begin(), listed.end(),
                            [](const IpPrefix& p) { return p.addr.family == AF_INET; }),
              1);

    bool v4 = false, v6 = false;
    auto addrs = ip_json(*ns_, "addr show dev " + dev_);
    ASSERT_EQ(addrs.size(), 1u);
    for (const auto& info : addrs[0]["addr_info"]) {
        if (info["local"] == "10.77.0.1" && info["prefixlen"] == 24) v4 = true;
        if (info["local"] == "fd00:77::1" && info["prefixlen"] == 64) v6 = true;
    }
    EXPECT_TRUE(v4);
    EXPECT_TRUE(v6);
}

TEST_F(RtnlTest, RoutesAddDelete) {
    ns_->run_inside([&] {
        link_set_up(dev_);
        route_add(dev_, prefix("10.78.0.0/16"));
        route_add(dev_, prefix("10.78.0.0/16"));  // already there: fine
        route_add(dev_, prefix("fd00:78::/64"));
        route_add(dev_, prefix("10.79.0.5/32"), 1000);
    });
    EXPECT_TRUE(has_route(*ns_, "main", "10.78.0.0/16", dev_));
    EXPECT_TRUE(has_route(*ns_, "main", "fd00:78::/64", dev_));
    EXPECT_TRUE(has_route(*ns_, "1000", "10.79.0.5", dev_));
    EXPECT_FALSE(has_route(*ns_, "main", "10.79.0.5", dev_));

    ns_->run_inside([&] {
        route_del(dev_, prefix("10.78.0.0/16"));
        route_del(dev_, prefix("10.79.0.5/32"), 1000);
        try {
            route_del(dev_, prefix("10.78.0.0/16"));
            ADD_FAILURE() << "deleting a missing route must fail";
        } catch (const NetlinkError& e) {
            EXPECT_EQ(e.error_code, ESRCH) << e.what();
            EXPECT_NE(std::string(e.what()).find("deleting route 10.78.0.0/16"), std::string::npos)
                << e.what();
        }
    });
    EXPECT_FALSE(has_route(*ns_, "main", "10.78.0.0/16", dev_));
    EXPECT_FALSE(has_route(*ns_, "1000", "10.79.0.5", dev_));
    EXPECT_TRUE(has_route(*ns_, "main", "fd00:78::/64", dev_));
}

TEST_F(RtnlTest, ErrorsNameTheOperation) {
    ns_->run_inside([&] {
        try {
            link_set_up("nbnosuchlink");
            ADD_FAILURE() << "expected NetlinkError";
        } catch (const NetlinkError& e) {
            EXPECT_NE(std::string(e.what()).find("no link named 'nbnosuchlink'"),
                      std::string::npos);
        }
        // A route through a link that is down is refused by the kernel itself.
        try {
            route_add(dev_, prefix("10.80.0.0/16"));
            ADD_FAILURE() << "expected NetlinkError";
        } catch (const NetlinkError& e) {
            EXPECT_EQ(e.error_code, ENETDOWN) << e.what();
            EXPECT_NE(std::string(e.what()).find("adding route 10.80.0.0/16 dev " + dev_),
                      std::string::npos)
                << e.what();
        }
        IpPrefix bad = iface_addr("10.0.0.1", 24);
        bad.len = 40;
        EXPECT_THROW(addr_add(dev_, bad), NetlinkError);
    });
}

TEST_F(RtnlTest, WireguardLinkOrClearError) {
    const std::string wg = "nbkwg0";
    ns_->run_inside([&] {
        try {
            link_add_wireguard(wg);
            // A kernel with WireGuard: the link must really be one.
            EXPECT_EQ(link_kind(wg), "wireguard");
            link_delete(wg);
            EXPECT_FALSE(link_index(wg));
        } catch (const NetlinkError& e) {
            EXPECT_FALSE(link_index(wg));
            EXPECT_NE(std::string(e.what()).find("creating WireGuard link " + wg),
                      std::string::npos)
                << e.what();
            std::printf("link_add_wireguard on this kernel: %s\n", e.what());
        }
    });
}

TEST_F(RtnlTest, LinkDelete) {
    ns_->run_inside([&] {
        link_delete(dev_);
        EXPECT_FALSE(link_index(dev_));
        EXPECT_THROW(link_delete(dev_), NetlinkError);
    });
    EXPECT_NE(ns_->ip("link show " + dev_).status, 0);
}

}  // namespace
}  // namespace nb
