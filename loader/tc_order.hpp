// Who sees the device's packets before our tc programs. A program ahead of ours that
// passes a packet ends the chain (tcx's TCX_PASS, clsact's TC_ACT_OK), so an idle
// peer's packet would reach WireGuard without being held: the operator must know.
// tcx runs its programs in link order, then clsact its chain-0 filters by priority.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loader/tc_attach.hpp"

namespace nb {

enum class TcDirection { Ingress, Egress };
const char* to_string(TcDirection d);

// One program (or non-BPF classifier) that runs before ours on a hook.
struct ProgramAhead {
    TcDirection direction = TcDirection::Egress;
    bool tcx = false;       // a tcx program; otherwise a clsact filter
    uint32_t prog_id = 0;   // 0: a classifier that is not BPF
    std::string name;       // the program's name; a classifier's kind when not BPF
    uint16_t priority = 0;  // clsact filters: priority ("pref") and handle
    uint32_t handle = 0;
    bool operator==(const ProgramAhead&) const = default;
};

struct TcOrder {
    bool checked = false;  // false: the chain could not be read (error says why)
    std::string error;
    std::vector<ProgramAhead> ahead;  // ingress's, then egress's, each in running order
    bool first() const { return checked && ahead.empty(); }
};

// For logs: "first on ingress and egress"; "1 program runs before ours on egress
// (tcx program id 12, name foo)"; "unknown (why)".
std::string describe(const TcOrder& order);
std::string describe(const ProgramAhead& p);  // "tcx program id 12, name foo"

// The order on the device now, for our programs attached there in `mode` (Tcx or Clsact).
TcOrder query_tc_order(int ifindex, AttachMode mode, uint32_t ingress_prog_id,
                       uint32_t egress_prog_id);

// The programs' kernel id (0 if it cannot be read).
uint32_t bpf_prog_id(int prog_fd);

}  // namespace nb
