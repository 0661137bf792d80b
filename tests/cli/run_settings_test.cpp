// `run`'s settings file: flag > env > file > default, each value through its flag's own
// checks, errors with PATH:LINE, and what SIGHUP is handed to read it again.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/cli/cli_harness.hpp"

namespace nb::cli {
namespace {

using namespace std::chrono_literals;

class RunSettings : public CliAsRoot {
  protected:
    void SetUp() override {
        CliAsRoot::SetUp();
        dir_ = std::filesystem::temp_directory_path() /
               ("nb-settings-" + std::to_string(::getpid()) + "-" +
                testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& text) {
        const std::string path = (dir_ / "wg0.conf").string();
        std::ofstream(path) << text;
        return path;
    }
    // The source and value the debug bundle records for `option`.
    static Setting setting(const RunOptions& o, const std::string& option) {
        for (const Setting& s : o.settings)
            if (s.name == option) return s;
        ADD_FAILURE() << option << " not among the settings";
        return {};
    }
    std::filesystem::path dir_;
};

TEST_F(RunSettings, FileFillsWhatNoFlagOrEnvGives) {
    const std::string path = write(
        "# a comment\n"
        "inactivity-threshold = 20m\n"
        "\n"
        "; another\n"
        "log-level = debug\n"
        "connect-timeout = 3s\n"
        "lazy-conn = off\n"
        "wake-rate = 7\n");
    std::optional<RunOptions> ran;
    auto r = cli({"run", "-i", "wg0", "--settings", path, "--connect-timeout", "4s"},
                 {{"NB_LAZY_CONN", "on"}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->inactivity_threshold, 20min);
    EXPECT_EQ(ran->wake_rate, 7u);
    EXPECT_EQ(ran->connect_timeout, 4s) << "the flag wins over the file";
    EXPECT_TRUE(ran->lazy) << "the environment wins over the file";
    EXPECT_EQ(setting(*ran, "--inactivity-threshold").source, "file " + path + ":2");
    EXPECT_EQ(setting(*ran, "--inactivity-threshold").value, "20m");
    EXPECT_EQ(setting(*ran, "--log-level").source, "file " + path + ":5");
    EXPECT_EQ(setting(*ran, "--connect-timeout").source, "flag");
    EXPECT_EQ(setting(*ran, "--lazy-conn").source, "env NB_LAZY_CONN");
    EXPECT_EQ(setting(*ran, "--exec-timeout").source, "default");

    // What SIGHUP starts from: the same file, and the live settings without it.
    const SettingsReload& re = ran->reload;
    EXPECT_EQ(re.path.value_or(""), path);
    EXPECT_TRUE(re.required);
    EXPECT_EQ(re.base.inactivity_threshold, 15min);
    EXPECT_EQ(re.base.log_level, LogLevel::Info);
    EXPECT_FALSE(re.inactivity_fixed);
    EXPECT_FALSE(re.log_level_fixed);
    EXPECT_TRUE(re.lazy_fixed);  // by NB_LAZY_CONN
}

TEST_F(RunSettings, FlagsFixTheLiveSettingsForSighup) {
    const std::string path = write("log-level = warn\n");
    std::optional<RunOptions> ran;
    auto r = cli({"run", "-i", "wg0", "--settings", path, "--log-level", "error",
                  "--inactivity-threshold", "2m"},
                 {}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(ran->reload.base.log_level, LogLevel::Error);
    EXPECT_EQ(ran->reload.base.inactivity_threshold, 2min);
    EXPECT_TRUE(ran->reload.log_level_fixed);
    EXPECT_TRUE(ran->reload.inactivity_fixed);
    EXPECT_FALSE(ran->reload.lazy_fixed);
}

TEST_F(RunSettings, PrintSettingsShowsEachValueAndItsSourceAndRunsNothing) {
    const std::string path = write("wake-rate = 7\ninactivity-threshold = 20m\n");
    std::optional<RunOptions> ran;
    auto r =
        cli({"run", "-i", "wg0", "--settings", path, "--connect-timeout", "4s", "--print-settings"},
            {{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "30m"}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(ran) << "--print-settings runs nothing";
    auto line_of = [&](const std::string& option) {
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);)
            if (line.rfind(option + " ", 0) == 0) return line;
        return std::string("(none)");
    };
    auto words = [](const std::string& line) {
        std::istringstream in(line);
        std::vector<std::string> w;
        for (std::string x; in >> x;) w.push_back(x);
        return w;
    };
    // flag > env > file > default, one of each.
    EXPECT_EQ(words(line_of("--connect-timeout")),
              (std::vector<std::string>{"--connect-timeout", "4s", "flag"}));
    EXPECT_EQ(words(line_of("--inactivity-threshold")),
              (std::vector<std::string>{"--inactivity-threshold", "30m", "env",
                                        "NB_LAZY_CONN_INACTIVITY_THRESHOLD"}))
        << "the environment wins over the file";
    EXPECT_EQ(words(line_of("--wake-rate")),
              (std::vector<std::string>{"--wake-rate", "7", "file", path + ":1"}));
    EXPECT_EQ(words(line_of("--exec-timeout")),
              (std::vector<std::string>{"--exec-timeout", "5s", "default"}));
    EXPECT_EQ(line_of("--print-settings"), "(none)");
    // Columns line up: every value starts where the first one does.
    const size_t col = line_of("--wake-rate").find(" 7 ") + 1;
    EXPECT_EQ(line_of("--exec-timeout").find("5s"), col) << r.out;
}

TEST_F(RunSettings, ErrorsNameTheFileAndLine) {
    const std::pair<std::string, std::string> cases[] = {
        {"log-level = info\nnope = 1\n", ":2: unknown setting 'nope'"},
        {"help = 1\n", ":1: unknown setting 'help'"},
        {"interface = wg1\n", ":1: interface cannot be set in a settings file"},
        {"\ninactivity-threshold = 5s\n", ":2: --inactivity-threshold: "},
        {"wake-rate = many\n", ":1: --wake-rate: "},
        {"trigger = xdp\n", ":1: --trigger: expected one of auto, bpf or udp, got \"xdp\""},
        // The same words as the flag's own error, from the same table.
        {"\n\nwg = foo\n", ":3: --wg: expected one of auto, kernel or userspace, got \"foo\""},
        {"lazy-conn = maybe\n",
         ":1: --lazy-conn: expected one of on, off, true, false, 1 or 0, got \"maybe\""},
        {"log-level\n", ":1: expected 'key = value'"},
        {"Log-Level = info\n", ":1: 'Log-Level' is not a setting's name"},
        {"log-level =\n", ":1: no value for log-level"},
        {"wake-rate = 1\nwake-rate = 2\n", ":2: wake-rate is already set on line 1"},
    };
    for (const auto& [text, want] : cases) {
        const std::string path = write(text);
        std::optional<RunOptions> ran;
        auto r = cli({"run", "-i", "wg0", "--settings", path}, {}, &ran);
        EXPECT_EQ(r.code, 2) << text;
        EXPECT_FALSE(ran) << text;
        EXPECT_NE(r.err.find(path + want), std::string::npos) << text << "\n" << r.err;
    }
    // Named but missing: refused. The default path is read only when it exists.
    auto r = cli({"run", "-i", "wg0", "--settings", (dir_ / "missing.conf").string()});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("missing.conf"), std::string::npos) << r.err;
    std::optional<RunOptions> ran;
    r = cli({"run", "-i", "nb-no-such-iface-settings"}, {}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(ran->reload.path.value_or(""), "/etc/nbagent/nb-no-such-iface-settings.conf");
    EXPECT_FALSE(ran->reload.required);
}

}  // namespace
}  // namespace nb::cli
