#include "base/enum_names.hpp"

#include <gtest/gtest.h>

namespace nb {
namespace {

enum class Color { Red, Green, Blue };

constexpr EnumName<Color> kColors[] = {
    {Color::Red, "red"},
    {Color::Green, "green"},
    {Color::Blue, "blue"},
};

TEST(EnumNames, BothWaysFromOneTable) {
    static_assert(name_of(kColors, Color::Green, "?")[0] == 'g');
    for (const auto& c : kColors) {
        EXPECT_STREQ(name_of(kColors, c.value, "?"), c.name);
        EXPECT_EQ(value_of(kColors, c.name), c.value);
    }
    EXPECT_STREQ(name_of(kColors, static_cast<Color>(7), "?"), "?");
    EXPECT_EQ(value_of(kColors, "Red"), std::nullopt);  // names are exact
    EXPECT_EQ(value_of(kColors, ""), std::nullopt);
}

TEST(EnumNames, ListForErrors) {
    EXPECT_EQ(name_list(kColors), "red, green or blue");
    constexpr EnumName<Color> one[] = {{Color::Red, "red"}};
    EXPECT_EQ(name_list(one), "red");
    constexpr EnumName<Color> two[] = {{Color::Red, "red"}, {Color::Blue, "blue"}};
    EXPECT_EQ(name_list(two), "red or blue");
}

}  // namespace
}  // namespace nb
