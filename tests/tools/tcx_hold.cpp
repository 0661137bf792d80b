// Another tcx user of a device, for the ordering tests (tests/integration/tc_coexist_order.sh):
// loads a tc program from an object file, attaches it to a device's tcx hooks first or
// last in the chain, prints the program's id and "ready", and holds the links until it is
// killed (they die with the process). bpftool 7.1 cannot attach tcx programs.
//   tcx_hold --dev IFACE --hook ingress|egress|both --obj FILE --prog NAME [--first]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "loader/tcx.hpp"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: tcx_hold --dev IFACE --hook ingress|egress|both --obj FILE --prog NAME "
                 "[--first]\n");
    return 2;
}

int attach(int prog_fd, int ifindex, uint32_t type, bool first, const char* what) {
    // No flag appends, as libbpf's bpf_link_create does; --first asks for BPF_F_BEFORE.
    int fd = nb::tcx::link_create(prog_fd, ifindex, type, first ? nb::tcx::kFlagBefore : 0);
    if (fd < 0) std::fprintf(stderr, "tcx_hold: attaching %s: %s\n", what, std::strerror(-fd));
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dev, hook, obj_path, prog_name;
    bool first = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--dev") {
            dev = value();
        } else if (a == "--hook") {
            hook = value();
        } else if (a == "--obj") {
            obj_path = value();
        } else if (a == "--prog") {
            prog_name = value();
        } else if (a == "--first") {
            first = true;
        } else {
            return usage();
        }
    }
    if (dev.empty() || obj_path.empty() || prog_name.empty() ||
        (hook != "ingress" && hook != "egress" && hook != "both"))
        return usage();
    const int ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    if (!ifindex) {
        std::fprintf(stderr, "tcx_hold: no device %s\n", dev.c_str());
        return 1;
    }
    bpf_object* obj = bpf_object__open_file(obj_path.c_str(), nullptr);
    if (!obj || bpf_object__load(obj)) {
        std::fprintf(stderr, "tcx_hold: loading %s failed\n", obj_path.c_str());
        return 1;
    }
    bpf_program* prog = bpf_object__find_program_by_name(obj, prog_name.c_str());
    if (!prog) {
        std::fprintf(stderr, "tcx_hold: no program %s in %s\n", prog_name.c_str(),
                     obj_path.c_str());
        return 1;
    }
    const int prog_fd = bpf_program__fd(prog);
    if ((hook == "ingress" || hook == "both") &&
        attach(prog_fd, ifindex, nb::tcx::kIngress, first, "ingress") < 0)
        return 1;
    if ((hook == "egress" || hook == "both") &&
        attach(prog_fd, ifindex, nb::tcx::kEgress, first, "egress") < 0)
        return 1;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0) std::printf("prog_id %u\n", info.id);
    std::printf("ready\n");
    std::fflush(stdout);
    // The links live as long as this process: SIGTERM's default action ends both.
    while (true) pause();
}
