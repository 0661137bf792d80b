// ResourceUse from /proc text and from this process; the allocation and slab texts.
#include "agent/debug/resources.hpp"

#include <gtest/gtest.h>

namespace nb::debug_test {

// A real /proc/self/status, shortened.
constexpr std::string_view kStatus =
    "Name:\tnbagent\n"
    "State:\tS (sleeping)\n"
    "VmPeak:\t  312000 kB\n"
    "VmSize:\t  311592 kB\n"
    "VmHWM:\t   15832 kB\n"
    "VmRSS:\t   12288 kB\n"
    "RssAnon:\t    8192 kB\n"
    "RssFile:\t    4352 kB\n"
    "RssShmem:\t       0 kB\n"
    "VmSwap:\t       4 kB\n"
    "Threads:\t7\n"
    "SigBlk:\t0000000000004003\n"
    "voluntary_ctxt_switches:\t1234\n"
    "nonvoluntary_ctxt_switches:\t56";  // no newline at the end

TEST(Resources, ParsesProcStatus) {
    const debug::ResourceUse u = debug::parse_proc_status(kStatus);
    EXPECT_EQ(u.rss_bytes, 12288u * 1024);
    EXPECT_EQ(u.rss_peak_bytes, 15832u * 1024);
    EXPECT_EQ(u.rss_anon_bytes, 8192u * 1024);
    EXPECT_EQ(u.rss_file_bytes, 4352u * 1024);
    EXPECT_EQ(u.vm_bytes, 311592u * 1024);
    EXPECT_EQ(u.swap_bytes, 4u * 1024);
    EXPECT_EQ(u.threads, 7u);
    EXPECT_EQ(u.voluntary_switches, 1234u);
    EXPECT_EQ(u.involuntary_switches, 56u);
    EXPECT_EQ(u.fds, 0u);  // not from this file
}

TEST(Resources, MissingAndOddLinesLeaveZeros) {
    const debug::ResourceUse u = debug::parse_proc_status("VmRSS\nThreads:\t\nVmSizeX:\t5 kB\n");
    EXPECT_EQ(u.rss_bytes, 0u);
    EXPECT_EQ(u.threads, 0u);
    EXPECT_EQ(u.vm_bytes, 0u);
}

TEST(Resources, ThisProcessHasMemoryThreadsAndFds) {
    const debug::ResourceUse u = debug::read_resource_use();
    EXPECT_GT(u.rss_bytes, 0u);
    EXPECT_GE(u.rss_peak_bytes, u.rss_bytes);
    EXPECT_GE(u.vm_bytes, u.rss_bytes);
    EXPECT_GE(u.threads, 1u);
    EXPECT_GE(u.fds, 3u);  // stdin, stdout, stderr
    EXPECT_GT(u.fd_limit, 0u);
}

TEST(Resources, RenderHasOneLinePerField) {
    const std::string text = debug::render_resources(debug::parse_proc_status(kStatus));
    EXPECT_NE(text.find("rss                    12582912 bytes (12.0 MiB)\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("threads                7\n"), std::string::npos) << text;
    EXPECT_NE(text.find("context switches       1234 voluntary"), std::string::npos) << text;
}

TEST(Allocations, SummaryHasMallinfoAndMallocInfoXml) {
    const std::string text = debug::allocation_summary();
    EXPECT_NE(text.find("uordblks"), std::string::npos) << text;
    EXPECT_NE(text.find("bytes in use"), std::string::npos) << text;
    EXPECT_NE(text.find("<malloc version="), std::string::npos) << text;
    EXPECT_NE(text.find("</malloc>"), std::string::npos) << text;
}

TEST(Allocations, SlabLinesKeepHeaderAndWireGuardCaches) {
    const std::string slabinfo =
        "slabinfo - version: 2.1\n"
        "# name            <active_objs> <num_objs> <objsize> : tunables\n"
        "wg_peer              128    130   1576   20    8 : tunables    0    0    0\n"
        "kmalloc-64          4000   4096     64   64    1 : tunables    0    0    0\n"
        "allowedips_node     1024   1050     64   64    1 : tunables    0    0    0\n"
        "ratelimiter_entry      0      0     64   64    1 : tunables    0    0    0\n"
        "wgx                    1      1     64   64    1 : tunables    0    0    0\n";
    const std::string lines = debug::wireguard_slab_lines(slabinfo);
    EXPECT_NE(lines.find("slabinfo - version: 2.1\n# name"), std::string::npos) << lines;
    EXPECT_NE(lines.find("wg_peer "), std::string::npos) << lines;
    EXPECT_NE(lines.find("allowedips_node "), std::string::npos) << lines;
    EXPECT_NE(lines.find("ratelimiter_entry "), std::string::npos) << lines;
    EXPECT_EQ(lines.find("kmalloc-64"), std::string::npos) << lines;
    EXPECT_EQ(lines.find("wgx"), std::string::npos) << lines;
}

TEST(Allocations, NoWireGuardCacheIsNoLines) {
    EXPECT_EQ(debug::wireguard_slab_lines("slabinfo - version: 2.1\n# name\nkmalloc-64 1 1\n"), "");
}

TEST(Allocations, SlabTextIsLinesOrAReason) {
    const std::string text = debug::wireguard_slab();
    ASSERT_FALSE(text.empty());
    const bool lines = text.starts_with("slabinfo - version:");
    const bool reason = text.starts_with("/proc/slabinfo ");
    EXPECT_TRUE(lines || reason) << text;
}

}  // namespace nb::debug_test
