// Literal addresses in tests: parse or fail the test, never crash it.
#pragma once

#include <gtest/gtest.h>

#include "base/net/ip.hpp"

namespace nb::test {

inline IpPrefix prefix(const char* text) {
    auto p = IpPrefix::parse(text);
    EXPECT_TRUE(p) << text;
    return p.value_or(IpPrefix{});
}

inline SockAddr endpoint(const char* text) {
    auto s = SockAddr::parse_numeric(text);
    EXPECT_TRUE(s) << text;
    return s.value_or(SockAddr{});
}

}  // namespace nb::test
