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

constexpr const auto& enum_names(Color) {
    return kColors;
}

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

// The helpers every domain's table gets by declaring enum_names next to it.
TEST(EnumNames, NamedEnumHelpers) {
    static_assert(NamedEnum<Color>);
    static_assert(!NamedEnum<int>);
    EXPECT_STREQ(to_string(Color::Blue), "blue");
    EXPECT_STREQ(to_string(std::optional<Color>(Color::Red)), "red");
    EXPECT_STREQ(to_string(std::optional<Color>()), "");
    EXPECT_EQ(parse_enum<Color>("green"), Color::Green);
    EXPECT_EQ(parse_enum<Color>("Green"), std::nullopt);
    EXPECT_EQ(parse_enum<Color>(""), std::nullopt);
    EXPECT_EQ(enum_name_list<Color>(), "red, green or blue");
    EXPECT_EQ(expected_one_of(kColors, "pink"), "expected one of red, green or blue, got \"pink\"");
}

}  // namespace
}  // namespace nb
