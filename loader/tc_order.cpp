#include "loader/tc_order.hpp"

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "base/net/rtnl.hpp"
#include "loader/tcx.hpp"

namespace nb {

namespace {

std::string prog_name(uint32_t id) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return "";
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    std::string name;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
    close(fd);
    return name;
}

// Every tcx program on the hook before `ours` (all of them when ours is not a tcx
// program, 0). Kernels without tcx have none. Throws when ours should be there and is not.
void tcx_ahead(int ifindex, TcDirection dir, uint32_t ours, std::vector<ProgramAhead>& out) {
    tcx::Chain chain =
        tcx::query(ifindex, dir == TcDirection::Ingress ? tcx::kIngress : tcx::kEgress);
    if (chain.error == EINVAL && !ours) return;  // no tcx in this kernel: nothing runs first
    if (chain.error)
        throw std::runtime_error(std::string("querying tcx ") + to_string(dir) + ": " +
                                 std::strerror(chain.error));
    auto it = std::find(chain.prog_ids.begin(), chain.prog_ids.end(), ours);
    if (ours && it == chain.prog_ids.end())
        throw std::runtime_error(std::string("our tcx ") + to_string(dir) +
                                 " program is not attached");
    for (auto id = chain.prog_ids.begin(); id != it; ++id) {
        ProgramAhead p;
        p.direction = dir;
        p.tcx = true;
        p.prog_id = *id;
        p.name = prog_name(*id);
        out.push_back(std::move(p));
    }
}

// The clsact filters before our filter (the one running program `ours`).
void clsact_ahead(int ifindex, TcDirection dir, uint32_t ours, std::vector<ProgramAhead>& out) {
    std::vector<TcFilter> filters = tc_filter_list(ifindex, dir == TcDirection::Ingress);
    auto it = std::find_if(filters.begin(), filters.end(),
                           [&](const TcFilter& f) { return f.bpf_id == ours; });
    if (it == filters.end())
        throw std::runtime_error(std::string("our clsact ") + to_string(dir) +
                                 " filter is not attached");
    for (auto f = filters.begin(); f != it; ++f) {
        ProgramAhead p;
        p.direction = dir;
        p.prog_id = f->bpf_id;
        p.name = f->bpf_id ? prog_name(f->bpf_id) : f->kind;
        if (p.name.empty()) p.name = f->bpf_name;
        p.priority = f->priority;
        p.handle = f->handle;
        out.push_back(std::move(p));
    }
}

}  // namespace

const char* to_string(TcDirection d) {
    return d == TcDirection::Ingress ? "ingress" : "egress";
}

std::string describe(const ProgramAhead& p) {
    std::string s;
    if (p.tcx) {
        s = "tcx program id " + std::to_string(p.prog_id);
    } else {
        char handle[16];
        std::snprintf(handle, sizeof handle, "0x%x", p.handle);
        s = "clsact filter pref " + std::to_string(p.priority) + " handle " + handle;
        if (p.prog_id) s += ", program id " + std::to_string(p.prog_id);
    }
    if (!p.name.empty()) s += ", name " + p.name;
    return s;
}

std::string describe(const TcOrder& order) {
    if (!order.checked) return "unknown (" + order.error + ")";
    if (order.ahead.empty()) return "first on ingress and egress";
    std::string out;
    for (TcDirection dir : {TcDirection::Ingress, TcDirection::Egress}) {
        std::vector<const ProgramAhead*> here;
        for (const auto& p : order.ahead)
            if (p.direction == dir) here.push_back(&p);
        if (!out.empty()) out += "; ";
        if (here.empty()) {
            out += std::string("first on ") + to_string(dir);
            continue;
        }
        out += std::to_string(here.size()) +
               (here.size() == 1 ? " program runs" : " programs run") + " before ours on " +
               to_string(dir) + " (";
        for (size_t i = 0; i < here.size(); ++i) out += (i ? "; " : "") + describe(*here[i]);
        out += ")";
    }
    return out;
}

TcOrder query_tc_order(int ifindex, AttachMode mode, uint32_t ingress_prog_id,
                       uint32_t egress_prog_id) {
    TcOrder order;
    try {
        for (TcDirection dir : {TcDirection::Ingress, TcDirection::Egress}) {
            const uint32_t ours = dir == TcDirection::Ingress ? ingress_prog_id : egress_prog_id;
            if (mode == AttachMode::Tcx) {
                tcx_ahead(ifindex, dir, ours, order.ahead);
            } else {
                // Every tcx program runs before any clsact filter.
                tcx_ahead(ifindex, dir, 0, order.ahead);
                clsact_ahead(ifindex, dir, ours, order.ahead);
            }
        }
        order.checked = true;
    } catch (const std::exception& e) {
        order.ahead.clear();
        order.error = e.what();
    }
    return order;
}

uint32_t bpf_prog_id(int prog_fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 ? info.id : 0;
}

}  // namespace nb
