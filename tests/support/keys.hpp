// WireGuard keys in tests: one byte repeated, so a test can tell them apart at a glance.
#pragma once

#include <cstdint>

#include "agent/wg/key.hpp"

namespace nb::test {

inline WgKey key_of(uint8_t b) {
    WgKey k;
    k.bytes.fill(b);
    return k;
}

}  // namespace nb::test
