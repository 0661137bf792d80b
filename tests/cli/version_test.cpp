// `nbagent --version` and `nbagent version [--json]`.
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "base/build_info.hpp"
#include "cli/commands.hpp"
#include "tests/cli/cli_harness.hpp"

namespace nb::cli {
namespace {

std::string uname_release() {
    utsname u{};
    EXPECT_EQ(::uname(&u), 0);
    return u.release;
}

TEST(CliVersion, FlagPrintsOneLineAndExitsZero) {
    const auto r = cli({"--version"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("nbagent ", 0), 0u) << r.out;
    EXPECT_EQ(r.out, "nbagent " + std::string(build_info().version) + "\n");
    EXPECT_EQ(r.err, "");
}

TEST(CliVersion, BuildInfoIsFilledIn) {
    const BuildInfo& b = build_info();
    EXPECT_FALSE(b.version.empty());
    EXPECT_FALSE(b.build_type.empty());
    EXPECT_FALSE(b.compiler.empty());
    // CMake's id and version: "GNU 12.2.0", "Clang 14.0.6".
    EXPECT_NE(b.compiler.find(' '), std::string_view::npos) << b.compiler;
}

TEST(CliVersion, JsonHasEveryFieldFilledIn) {
    const auto r = cli({"version", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.size(), 5u) << r.out;
    for (const char* key : {"version", "build_type", "compiler", "libbpf", "kernel"}) {
        ASSERT_TRUE(j.contains(key)) << key;
        ASSERT_TRUE(j[key].is_string()) << key;
        EXPECT_FALSE(j[key].get<std::string>().empty()) << key;
    }
    EXPECT_EQ(j["version"], std::string(build_info().version));
    EXPECT_EQ(j["kernel"], uname_release());
    EXPECT_EQ(j, version_json());
}

TEST(CliVersion, LibbpfIsMajorDotMinor) {
    const std::string v = version_json()["libbpf"];
    const size_t dot = v.find('.');
    ASSERT_NE(dot, std::string::npos) << v;
    EXPECT_GT(dot, 0u) << v;
    EXPECT_LT(dot + 1, v.size()) << v;
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](char c) { return c == '.' || isdigit(c); }))
        << v;
}

TEST(CliVersion, TextIsOneFieldPerLine) {
    const auto r = cli({"version"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = version_json();
    const std::pair<const char*, const char*> rows[] = {{"version", "version"},
                                                        {"build type", "build_type"},
                                                        {"compiler", "compiler"},
                                                        {"libbpf", "libbpf"},
                                                        {"kernel", "kernel"}};
    std::string want;
    for (auto [label, key] : rows) {
        std::string line = label;
        line.resize(12, ' ');
        want += line + j[key].get<std::string>() + "\n";
    }
    EXPECT_EQ(r.out, want);
}

TEST(CliVersion, UnknownOptionIsAUsageError) {
    EXPECT_EQ(cli({"version", "--yaml"}).code, 2);
}

}  // namespace
}  // namespace nb::cli
