#include "loader/tc_attach.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "base/enum_names.hpp"
#include "base/errno_text.hpp"
#include "base/net/rtnl.hpp"
#include "loader/tc_order.hpp"
#include "loader/tcx.hpp"

namespace nb {

namespace {

// Our clsact filters carry this handle ("nb") and priority, so a restart can find and
// replace exactly them and nothing of anyone else's. Priority 1 runs first: a filter
// before us that returns TC_ACT_OK would end the chain and let idle peers' packets
// reach WireGuard. (0 asks the kernel to choose, and it chooses one after ours.)
constexpr uint32_t kFilterHandle = 0x6e62;
constexpr uint32_t kFilterPriority = 1;

bpf_tc_hook make_hook(int ifindex, bpf_tc_attach_point point) {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = point;
    return hook;
}

bpf_tc_opts make_opts(int prog_fd) {
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = kFilterHandle;
    opts.priority = kFilterPriority;
    opts.prog_fd = prog_fd;
    return opts;
}

// libbpf logs the kernel's complaint when the clsact qdisc already exists, which is the
// normal case when sharing the device; everything else it says stays a warning.
thread_local bool quiet_libbpf = false;

int libbpf_to_spdlog(libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    std::string msg(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1) : 0);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (quiet_libbpf || level == LIBBPF_INFO)
        spdlog::debug("libbpf: {}", msg);
    else
        spdlog::warn("libbpf: {}", msg);
    return n;
}

}  // namespace

TcAttachment::TcAttachment(int ifindex, int ingress_fd, int egress_fd, AttachMode mode)
    : ifindex_(ifindex),
      mode_(mode),
      ingress_id_(bpf_prog_id(ingress_fd)),
      egress_id_(bpf_prog_id(egress_fd)) {
    if (mode == AttachMode::Tcx || mode == AttachMode::Auto) {
        try {
            attach_tcx(ingress_fd, egress_fd);
            mode_ = AttachMode::Tcx;
            return;
        } catch (const AttachError& e) {
            if (mode == AttachMode::Tcx) throw;
            spdlog::info("tcx not usable ({}), falling back to clsact", e.what());
        }
    }
    attach_clsact(ingress_fd, egress_fd);
    mode_ = AttachMode::Clsact;
}

TcAttachment::~TcAttachment() {
    detach();
}

void TcAttachment::attach_tcx(int ingress_fd, int egress_fd) {
    // First in the chain (BPF_F_BEFORE, relative to no program): a tcx program before
    // ours that returns TCX_PASS ends the chain, and an idle peer's packet would reach
    // WireGuard unheld. Without the flag the kernel appends, after everyone else.
    int in = tcx::link_create(ingress_fd, ifindex_, tcx::kIngress, tcx::kFlagBefore);
    if (in < 0) throw AttachError("tcx ingress link: " + errno_text(in));
    int out = tcx::link_create(egress_fd, ifindex_, tcx::kEgress, tcx::kFlagBefore);
    if (out < 0) {
        ::close(in);
        throw AttachError("tcx egress link: " + errno_text(out));
    }
    ingress_link_ = in;
    egress_link_ = out;
}

void TcAttachment::attach_clsact(int ingress_fd, int egress_fd) {
    bpf_tc_hook hook =
        make_hook(ifindex_, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    libbpf_set_print(libbpf_to_spdlog);
    quiet_libbpf = true;
    int err = bpf_tc_hook_create(&hook);
    quiet_libbpf = false;
    // An existing clsact belongs to someone else (or an earlier us): share it.
    if (err && err != -EEXIST) throw AttachError("creating clsact qdisc: " + errno_text(err));
    created_clsact_ = (err == 0);

    const std::pair<bpf_tc_attach_point, int> points[] = {{BPF_TC_INGRESS, ingress_fd},
                                                          {BPF_TC_EGRESS, egress_fd}};
    for (auto [point, fd] : points) {
        bpf_tc_hook h = make_hook(ifindex_, point);
        bpf_tc_opts opts = make_opts(fd);
        // REPLACE: a filter left by a killed agent is taken over, never duplicated.
        opts.flags = BPF_TC_F_REPLACE;
        err = bpf_tc_attach(&h, &opts);
        // Replacing keeps a stale filter's place, and a filter someone added at our
        // priority since runs before it (cls_bpf puts new filters first): start over.
        if (!err && foreign_filter_first(point == BPF_TC_INGRESS)) {
            bpf_tc_opts del = make_opts(0);
            bpf_tc_detach(&h, &del);
            opts = make_opts(fd);
            err = bpf_tc_attach(&h, &opts);
            if (!err)
                spdlog::info("clsact {}: our filter re-added ahead of another at priority {}",
                             point == BPF_TC_INGRESS ? "ingress" : "egress", kFilterPriority);
        }
        if (err) {
            remove_stale_clsact_filters(ifindex_);
            throw AttachError(std::string("attaching clsact ") +
                              (point == BPF_TC_INGRESS ? "ingress" : "egress") +
                              " filter: " + errno_text(err));
        }
    }
    clsact_attached_ = true;
}

bool TcAttachment::foreign_filter_first(bool ingress) const {
    try {
        const uint32_t ours = ingress ? ingress_id_ : egress_id_;
        auto filters = tc_filter_list(ifindex_, ingress);
        return !filters.empty() && filters.front().bpf_id != ours &&
               filters.front().priority == kFilterPriority;
    } catch (const std::exception& e) {
        spdlog::debug("listing clsact filters: {}", e.what());
        return false;  // the order check reports what cannot be read
    }
}

TcOrder TcAttachment::order() const {
    return query_tc_order(ifindex_, mode_, ingress_id_, egress_id_);
}

void TcAttachment::detach() {
    if (ingress_link_ >= 0) ::close(ingress_link_);
    if (egress_link_ >= 0) ::close(egress_link_);
    ingress_link_ = egress_link_ = -1;
    if (clsact_attached_) {
        remove_stale_clsact_filters(ifindex_);
        clsact_attached_ = false;
        // The qdisc stays even if we created it: other tools may have added filters
        // to it since, and an empty clsact costs nothing.
    }
}

int remove_stale_clsact_filters(int ifindex) {
    int removed = 0;
    for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
        bpf_tc_hook h = make_hook(ifindex, point);
        bpf_tc_opts opts{};
        opts.sz = sizeof(opts);
        opts.handle = kFilterHandle;
        opts.priority = kFilterPriority;
        if (bpf_tc_detach(&h, &opts) == 0) ++removed;
    }
    return removed;
}

}  // namespace nb
