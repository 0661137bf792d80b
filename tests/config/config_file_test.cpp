#include "agent/config/config_file.hpp"
#include "agent/config/settings_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "agent/config/wg_quick.hpp"

namespace nb {
namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/nb-config-file-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string error_of(const std::string& path, size_t max = kMaxConfigBytes) {
    try {
        read_config_file(path, max);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ConfigFile, ReadsARegularFileWhole) {
    TempDir d;
    const std::string p = d.path + "/wg.conf";
    std::string text;
    for (int i = 0; i < 10000; ++i) text += "# line " + std::to_string(i) + "\n";
    std::ofstream(p) << text;
    EXPECT_EQ(read_config_file(p), text);
    std::ofstream(d.path + "/empty");
    EXPECT_EQ(read_config_file(d.path + "/empty"), "");
}

// The defect: `nbagent apply -c /dev/zero` grew the agent to 6.4 GB, and a FIFO blocked
// its loop until someone wrote to it. Both must fail at once, naming the problem.
TEST(ConfigFile, RefusesWhatIsNotARegularFile) {
    TempDir d;
    const std::string fifo = d.path + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(error_of(fifo), fifo + ": not a regular file (a FIFO)");
    EXPECT_EQ(error_of("/dev/zero"), "/dev/zero: not a regular file (a character device)");
    EXPECT_EQ(error_of(d.path), d.path + ": not a regular file (a directory)");
    EXPECT_EQ(error_of(d.path + "/missing"),
              d.path + "/missing: cannot read: No such file or directory");
}

TEST(ConfigFile, RefusesAFileOverTheLimit) {
    TempDir d;
    const std::string p = d.path + "/big.conf";
    std::ofstream(p) << std::string(1001, 'x');
    EXPECT_EQ(error_of(p, 1000), p + ": larger than the limit of 1000 bytes");
    EXPECT_EQ(read_config_file(p, 1001).size(), 1001u);
}

TEST(ConfigFile, LoadWgQuickUsesTheBoundedReader) {
    EXPECT_THROW(load_wg_quick("/dev/zero"), ConfigError);
}

TEST(SettingsFile, LinesWithTheirNumbers) {
    const SettingsFile f = parse_settings(
        "# comment\n  log-level =  debug  \n\n; other\r\nwake-rate=7\nconfig = /a b=c\n", "s.conf");
    ASSERT_EQ(f.lines.size(), 3u);
    EXPECT_EQ(f.lines[0].key, "log-level");
    EXPECT_EQ(f.lines[0].value, "debug");
    EXPECT_EQ(f.lines[0].line, 2);
    EXPECT_EQ(f.lines[1].value, "7");
    EXPECT_EQ(f.lines[1].line, 5);
    EXPECT_EQ(f.lines[2].value, "/a b=c");  // the first '=' splits
    EXPECT_EQ(f.where(*f.find("wake-rate")), "s.conf:5");
    EXPECT_EQ(f.find("trigger"), nullptr);
}

TEST(SettingsFile, ErrorsNameTheLine) {
    auto error = [](const std::string& text) {
        try {
            parse_settings(text, "s.conf");
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    EXPECT_EQ(error("a = 1\nb\n"), "s.conf:2: expected 'key = value', got 'b'");
    EXPECT_EQ(error("= 1\n"), "s.conf:1: no key before '='");
    EXPECT_EQ(error("a_b = 1\n").rfind("s.conf:1: 'a_b' is not a setting's name", 0), 0u);
    EXPECT_EQ(error("a = \n"), "s.conf:1: no value for a");
    EXPECT_EQ(error("a = 1\n\na = 2\n"), "s.conf:3: a is already set on line 1");
    EXPECT_THROW(load_settings("/dev/zero"), ConfigError);
}

TEST(ConfigFile, PathIsQuotedPrintable) {
    EXPECT_EQ(error_of("/nonexistent/\x1b[2J"),
              "/nonexistent/\\x1b[2J: cannot read: No such file or directory");
}

}  // namespace
}  // namespace nb
