// Programs ahead of ours on a tc hook, as the order check reports them (tests).
#pragma once

#include <cstdint>

#include "loader/tc_order.hpp"

namespace nb::test {

inline ProgramAhead tcx_prog(TcDirection dir, uint32_t id, const char* name) {
    ProgramAhead p;
    p.direction = dir;
    p.tcx = true;
    p.prog_id = id;
    p.name = name;
    return p;
}

inline ProgramAhead filter(TcDirection dir, uint32_t id, const char* name, uint16_t pref,
                           uint32_t h) {
    ProgramAhead p;
    p.direction = dir;
    p.prog_id = id;
    p.name = name;
    p.priority = pref;
    p.handle = h;
    return p;
}

}  // namespace nb::test
