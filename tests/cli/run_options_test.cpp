// `run`'s options as RunOptions: the names of every mode checked against their tables
// while argv is parsed, parsed once and never guessed, and defaults that are RunOptions'.
#include <gtest/gtest.h>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/cli/cli_harness.hpp"

namespace nb::cli {
namespace {

TEST(RunOptionNames, UnknownNamesAreUsageErrorsListingTheTable) {
    const std::pair<std::vector<std::string>, std::string> cases[] = {
        {{"--wg", "foo"}, "--wg: expected one of auto, kernel or userspace, got \"foo\""},
        {{"--trigger", "x"}, "--trigger: expected one of auto, bpf or udp, got \"x\""},
        {{"--attach", "x"}, "--attach: expected one of auto, tcx or clsact, got \"x\""},
        {{"--log-level", "x"},
         "--log-level: expected one of trace, debug, info, warn or error, got \"x\""},
        {{"--lazy-conn", "maybe"},
         "--lazy-conn: expected one of on, off, true, false, 1 or 0, got \"maybe\""},
        {{"--udp-forward-handshake", "maybe"},
         "--udp-forward-handshake: expected one of on, off, true, false, 1 or 0, got \"maybe\""},
        // Names are exact: no case folding, no fallback to auto.
        {{"--wg", "Kernel"}, "--wg: expected one of auto, kernel or userspace, got \"Kernel\""},
        {{"--trigger", ""}, "--trigger: expected one of auto, bpf or udp, got \"\""},
    };
    for (const auto& [flags, want] : cases) {
        std::vector<std::string> args = {"run", "-i", "wg0"};
        args.insert(args.end(), flags.begin(), flags.end());
        std::optional<RunOptions> ran;
        const CliResult r = cli(args, {}, &ran);
        EXPECT_EQ(r.code, 2) << want;
        EXPECT_FALSE(ran) << want;
        EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    }
    const CliResult r = cli({"set", "log-level", "loud"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("expected one of trace, debug, info, warn or error, got \"loud\""),
              std::string::npos)
        << r.err;
}

TEST(RunOptionNames, HelpListsEachTablesNames) {
    const CliResult r = cli({"run", "--help"});
    ASSERT_EQ(r.code, 0);
    for (const char* shown :
         {"--wg TEXT:{auto,kernel,userspace}=auto", "--trigger TEXT:{auto,bpf,udp}=auto",
          "--attach TEXT:{auto,tcx,clsact}=auto",
          "--log-level TEXT:{trace,debug,info,warn,error}=info"})
        EXPECT_NE(r.out.find(shown), std::string::npos) << shown << "\n" << r.out;
}

// Past the validators no unknown name can reach to_run_options; should one (a caller
// that skipped them), it is refused, naming the option, never taken as auto.
TEST(RunOptionNames, ToRunOptionsRefusesWhatTheValidatorWould) {
    const auto no_env = env_of({});
    auto refused = [&](RunArgs a, const std::string& want) {
        try {
            to_run_options(a, no_env);
            ADD_FAILURE() << "accepted: " << want;
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
    };
    RunArgs a;
    a.wg = "kernal";
    refused(a, "--wg: expected one of auto, kernel or userspace, got \"kernal\"");
    a = {};
    a.trigger = "xdp";
    refused(a, "--trigger: expected one of auto, bpf or udp, got \"xdp\"");
    a = {};
    a.attach = "tc";
    refused(a, "--attach: expected one of auto, tcx or clsact, got \"tc\"");
    a = {};
    a.log_level = "verbose";
    refused(a, "--log-level: expected one of trace, debug, info, warn or error");
    a = {};
    a.udp_forward_handshake = "perhaps";
    refused(a, "--udp-forward-handshake: expected one of on, off");
}

// RunArgs' defaults are produced from RunOptions': parsed back, they are the same values
// for every option the two share, so the CLI cannot show one default and run another.
TEST(RunOptionDefaults, RunArgsDefaultsAreRunOptionsDefaults) {
    const RunOptions d;
    RunArgs a;
    a.interface = "wg0";
    const RunOptions o = to_run_options(a, env_of({}));
    EXPECT_EQ(o.wg_mode, d.wg_mode);
    EXPECT_EQ(o.lazy, d.lazy);
    EXPECT_EQ(o.max_held_packets, d.max_held_packets);
    EXPECT_EQ(o.connect_timeout, d.connect_timeout);
    EXPECT_EQ(o.connect_backoff, d.connect_backoff);
    EXPECT_EQ(o.wake_rate, d.wake_rate);
    EXPECT_EQ(o.inactivity_threshold, d.inactivity_threshold);
    EXPECT_EQ(o.max_peers, d.max_peers);
    EXPECT_EQ(o.ring_buffer_bytes, d.ring_buffer_bytes);
    EXPECT_EQ(o.udp_forward_handshake, d.udp_forward_handshake);
    EXPECT_EQ(o.exec_timeout, d.exec_timeout);
    EXPECT_EQ(o.wg_timeout, d.wg_timeout);
    EXPECT_EQ(o.attach_mode, d.attach_mode);
    EXPECT_EQ(o.trigger, d.trigger);
    EXPECT_EQ(o.log_level, d.log_level);
    EXPECT_EQ(o.trace_ring, d.trace_ring);
    EXPECT_EQ(o.log_ring, d.log_ring);
    EXPECT_EQ(o.metrics_listen.has_value(), d.metrics_listen.has_value());
    // What SIGHUP falls back to is the same too.
    const LiveSettings live;
    EXPECT_EQ(live.log_level, d.log_level);
    EXPECT_EQ(live.inactivity_threshold, d.inactivity_threshold);
    EXPECT_EQ(live.lazy, d.lazy);
    // And the lazy manager's own defaults, which RunOptions starts from.
    const LazyOptions m;
    EXPECT_EQ(m.max_held, d.max_held_packets);
    EXPECT_EQ(m.exec_timeout, d.exec_timeout);
    EXPECT_EQ(m.connect_timeout, d.connect_timeout);
    EXPECT_EQ(m.inactivity_threshold, d.inactivity_threshold);
    EXPECT_EQ(m.backoff_base, d.connect_backoff);
    EXPECT_EQ(m.lazy, d.lazy);
}

}  // namespace
}  // namespace nb::cli
