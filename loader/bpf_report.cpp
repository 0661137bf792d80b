#include "loader/bpf_report.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/errno_text.hpp"
#include "base/net/rtnl.hpp"
#include "base/unique_fd.hpp"
#include "loader/datapath.hpp"
#include "loader/tcx.hpp"

namespace nb {

namespace {

std::string hex_tag(const unsigned char (&tag)[BPF_TAG_SIZE]) {
    std::string out;
    char buf[3];
    for (unsigned char c : tag) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        out += buf;
    }
    return out;
}

bool stats_enabled() {
    std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
    int v = 0;
    return (in >> v) && v != 0;
}

// As an address, so that an anonymized bundle maps it like any other.
std::string dotted(uint32_t host_order) {
    char buf[INET_ADDRSTRLEN];
    const uint32_t be = htonl(host_order);
    return inet_ntop(AF_INET, &be, buf, sizeof buf) ? buf : "?";
}

}  // namespace

uint64_t memlock_bytes(int fd) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(in, line);)
        if (line.rfind("memlock:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10);
    return 0;
}

std::string describe_program_fd(int prog_fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        return "program fd " + std::to_string(prog_fd) + ": " + errno_text(errno);
    const char* type = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
    std::ostringstream o;
    o << "program id " << info.id << " name " << info.name << " type " << (type ? type : "?")
      << " tag " << hex_tag(info.tag) << " xlated " << info.xlated_prog_len << " B jited "
      << info.jited_prog_len << " B";
    if (info.run_cnt || info.run_time_ns)
        o << " runs " << info.run_cnt << " run_time_ns " << info.run_time_ns;
    if (info.recursion_misses) o << " recursion_misses " << info.recursion_misses;
    if (uint64_t m = memlock_bytes(prog_fd)) o << " memlock " << m;
    return o.str();
}

std::string describe_program_id(uint32_t prog_id) {
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    if (fd.get() < 0) return "program id " + std::to_string(prog_id) + ": " + errno_text(errno);
    return describe_program_fd(fd.get());
}

std::string describe_map_fd(int map_fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
        return "map fd " + std::to_string(map_fd) + ": " + errno_text(errno);
    const char* type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
    std::ostringstream o;
    o << "map id " << info.id << " name " << info.name << " type " << (type ? type : "?") << " key "
      << info.key_size << " B value " << info.value_size << " B max_entries " << info.max_entries
      << " memlock " << memlock_bytes(map_fd) << " B";
    return o.str();
}

std::string datapath_report(const Datapath& dp) {
    std::ostringstream o;
    const DatapathOptions& opt = dp.options();
    o << "# datapath\n"
      << "attach " << to_string(dp.attach_mode()) << "\n"
      << "max_peers " << opt.max_peers << " max_routes " << opt.max_routes << " ring_bytes "
      << opt.ringbuf_bytes << " max_held " << opt.max_held << "\n"
      << "dense4 " << (opt.dense4_size ? dotted(opt.dense4_base) : "none") << " + "
      << opt.dense4_size << " addresses\n"
      << "ring_full " << dp.ring_full_count() << " (reports the ring buffer refused, ever)\n"
      << "ns_per_jiffy " << dp.ns_per_jiffy() << "\n"
      << "run counts: "
      << (stats_enabled() ? "on (kernel.bpf_stats_enabled)"
                          : "off (sysctl kernel.bpf_stats_enabled=1 turns them on)")
      << "\n\n# programs\n"
      << "egress  " << describe_program_fd(dp.egress_fd()) << "\n"
      << "ingress " << describe_program_fd(dp.ingress_fd()) << "\n\n# maps\n";
    for (int fd : dp.map_fds()) o << describe_map_fd(fd) << "\n";
    return o.str();
}

std::string tc_report(int ifindex) {
    std::ostringstream o;
    char name[IF_NAMESIZE] = {};
    o << "# tc hooks of " << (if_indextoname(static_cast<unsigned>(ifindex), name) ? name : "?")
      << " (ifindex " << ifindex << "), in the order the kernel runs them\n";
    for (bool ingress : {true, false}) {
        const char* dir = ingress ? "ingress" : "egress";
        tcx::Chain chain = tcx::query(ifindex, ingress ? tcx::kIngress : tcx::kEgress);
        o << "\n## " << dir << ": tcx\n";
        if (chain.error)
            o << "(not readable: " << errno_text(chain.error) << ")\n";
        else if (chain.prog_ids.empty())
            o << "(none)\n";
        for (uint32_t id : chain.prog_ids) o << describe_program_id(id) << "\n";
        o << "## " << dir << ": clsact filters (chain 0)\n";
        try {
            std::vector<TcFilter> filters = tc_filter_list(ifindex, ingress);
            if (filters.empty()) o << "(none)\n";
            for (const TcFilter& f : filters) {
                o << "pref " << f.priority << " handle 0x" << std::hex << f.handle << std::dec
                  << " protocol 0x" << std::hex << f.protocol << std::dec << " kind " << f.kind;
                if (f.bpf_id) o << " \"" << f.bpf_name << "\" " << describe_program_id(f.bpf_id);
                o << "\n";
            }
        } catch (const std::exception& e) {
            o << "(not readable: " << e.what() << ")\n";
        }
    }
    return o.str();
}

}  // namespace nb
