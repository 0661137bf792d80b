#include "base/printable.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nb {
namespace {

TEST(Printable, KeepsPrintableTextAndUnicode) {
    EXPECT_EQ(printable("plain text\twith tab"), "plain text\twith tab");
    EXPECT_EQ(printable("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80"),
              "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(Printable, EscapesControlsInvalidBytesAndBidiOverrides) {
    EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
    EXPECT_EQ(printable("a\x1b[2Jb\nc\x7f"), "a\\x1b[2Jb\\x0ac\\x7f");
    EXPECT_EQ(printable("c1 \xc2\x9b"), "c1 \\xc2\\x9b");  // 8-bit CSI
    EXPECT_EQ(printable("\xe2\x80\xae"
                        "abc"),
              "\\xe2\\x80\\xae"
              "abc");                                                  // RLO
    EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
    EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate
    EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
    EXPECT_EQ(printable("cut \xf0\x9f\x98"), "cut \\xf0\\x9f\\x98");   // truncated
    EXPECT_EQ(printable(std::string("nul\0x", 5)), "nul\\x00x");
}

TEST(Printable, ResultIsAlwaysValidUtf8) {
    std::string all;
    for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    for (int b = 0; b < 256; ++b) {
        all.push_back(static_cast<char>(0xe2));
        all.push_back(static_cast<char>(b));
    }
    const std::string out = printable(all, 1 << 20);
    EXPECT_TRUE(is_valid_utf8(out));
    for (unsigned char c : out) EXPECT_TRUE(c >= 0x20 || c == '\t') << int(c);
}

TEST(Printable, CutsLongTextAtACharacterBoundary) {
    std::string euros;
    for (int i = 0; i < 100; ++i) euros += "\xe2\x82\xac";
    const std::string out = printable(euros, 10);
    EXPECT_EQ(out, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...");
    EXPECT_TRUE(is_valid_utf8(out));
}

}  // namespace
}  // namespace nb
