// Which IPv4 host routes go to the dense array: pure arithmetic, no BPF needed.
#include <gtest/gtest.h>

#include "loader/datapath.hpp"

namespace nb {
namespace {

V4HostBounds hosts(uint32_t first, uint32_t n) {
    V4HostBounds b;
    for (uint32_t i = 0; i < n; ++i) b.add(first + i);
    return b;
}

TEST(Dense4Range, NoHostsNoRange) {
    EXPECT_EQ(dense4_range_for(V4HostBounds{}, 1000).size, 0u);
}

TEST(Dense4Range, WholeSlash24sPlusAQuarter) {
    // 100.64.0.10 .. 100.64.3.209: four /24s, then a quarter more above.
    Dense4Range r = dense4_range_for(hosts(0x6440000a, 1000), 1250);
    EXPECT_EQ(r.base, 0x64400000u);
    EXPECT_EQ(r.size, 1024u + 256u);
}

TEST(Dense4Range, SparseAddressesUseTheHash) {
    // Two peers 10.0.0.1 and 10.200.0.1: 13M addresses for two entries.
    V4HostBounds b;
    b.add(0x0a000001);
    b.add(0x0ac80001);
    EXPECT_EQ(dense4_range_for(b, 4096).size, 0u);
}

TEST(Dense4Range, AMillionPeersInASlash12) {
    Dense4Range r = dense4_range_for(hosts(0x0a000001, 1000000), 1250000);
    EXPECT_EQ(r.base, 0x0a000000u);
    EXPECT_GE(uint64_t{r.base} + r.size, 0x0a000001ull + 1000000);
    EXPECT_LE(r.size, 8u * 1250000u);
}

TEST(Dense4Range, NeverPastTheEndOfTheAddressSpace) {
    Dense4Range r = dense4_range_for(hosts(0xffffff00, 200), 4096);
    EXPECT_EQ(r.base, 0xffffff00u);
    EXPECT_EQ(uint64_t{r.base} + r.size, 1ull << 32);
}

}  // namespace
}  // namespace nb
