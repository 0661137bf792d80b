// Every mode's table of names (parsing, --help, errors, status JSON and the docs read
// it): each name parses to its value and back to itself, no name or value twice, and
// nothing outside the table parses, so no spelling silently becomes auto.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "agent/activity/trigger_mode.hpp"
#include "agent/config/setting_values.hpp"
#include "agent/connector/connector.hpp"
#include "agent/wg/wg_backend.hpp"
#include "cli/commands.hpp"
#include "loader/tc_attach.hpp"

namespace nb {
namespace {

template <NamedEnum E>
void expect_round_trip(const char* what) {
    SCOPED_TRACE(what);
    const auto& table = enum_names(E{});
    std::set<std::string> names;
    std::set<E> values;
    for (const auto& n : table) {
        EXPECT_EQ(parse_enum<E>(n.name), n.value) << n.name;
        EXPECT_STREQ(to_string(n.value), n.name);
        EXPECT_TRUE(names.insert(n.name).second) << "name twice: " << n.name;
        EXPECT_TRUE(values.insert(n.value).second) << "value twice: " << n.name;
        std::string upper = n.name;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (upper != n.name) {
            EXPECT_EQ(parse_enum<E>(upper), std::nullopt) << "names are exact";
        }
        EXPECT_EQ(parse_enum<E>(std::string(n.name) + " "), std::nullopt);
    }
    EXPECT_EQ(parse_enum<E>(""), std::nullopt);
    EXPECT_EQ(parse_enum<E>("bogus"), std::nullopt);
    EXPECT_EQ(to_string(std::optional<E>()), std::string());
    EXPECT_EQ(expected_one_of(table, "bogus"),
              "expected one of " + enum_name_list<E>() + ", got \"bogus\"");
}

TEST(ModeNames, EveryTableRoundTrips) {
    expect_round_trip<WgMode>("WgMode");
    expect_round_trip<WgBackend>("WgBackend");
    expect_round_trip<TriggerMode>("TriggerMode");
    expect_round_trip<TriggerEngine>("TriggerEngine");
    expect_round_trip<AttachMode>("AttachMode");
    expect_round_trip<ConnectorKind>("ConnectorKind");
    expect_round_trip<LogLevel>("LogLevel");
    expect_round_trip<cli::TraceOutput>("TraceOutput");
}

// The spellings on the wire and on the command line, which scripts and integration tests
// grep: a table may only grow.
TEST(ModeNames, WireSpellings) {
    EXPECT_EQ(enum_name_list<WgMode>(), "auto, kernel or userspace");
    EXPECT_EQ(enum_name_list<WgBackend>(), "kernel or userspace");
    EXPECT_EQ(enum_name_list<TriggerMode>(), "auto, bpf or udp");
    EXPECT_EQ(enum_name_list<TriggerEngine>(), "bpf or udp");
    EXPECT_EQ(enum_name_list<AttachMode>(), "auto, tcx or clsact");
    EXPECT_EQ(enum_name_list<ConnectorKind>(), "static, exec or etcd");
    EXPECT_EQ(enum_name_list<LogLevel>(), "trace, debug, info, warn or error");
    EXPECT_EQ(name_list(kSwitchNames), "on, off, true, false, 1 or 0");
    // The running mode's names are the choice's, less auto.
    for (const auto& n : kWgBackendNames) EXPECT_TRUE(parse_enum<WgMode>(n.name)) << n.name;
    for (const auto& n : kTriggerEngineNames)
        EXPECT_TRUE(parse_enum<TriggerMode>(n.name)) << n.name;
}

// A switch has aliases: every spelling, in any case, is its value, and the value shows
// as its first spelling, which parses back to it.
TEST(ModeNames, SwitchSpellings) {
    for (const auto& n : kSwitchNames) {
        EXPECT_EQ(parse_switch(n.name), n.value) << n.name;
        std::string upper = n.name;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        EXPECT_EQ(parse_switch(upper), n.value) << upper;
        EXPECT_EQ(parse_switch(switch_name(n.value)), n.value);
    }
    EXPECT_STREQ(switch_name(true), "on");
    EXPECT_STREQ(switch_name(false), "off");
    for (const char* bad : {"", "maybe", "yes", "2", "on "})
        EXPECT_EQ(parse_switch(bad), std::nullopt) << bad;
    // A config's Lazy = takes yes/no besides.
    for (const auto& n : kConfigSwitchNames) EXPECT_EQ(parse_config_switch(n.name), n.value);
    EXPECT_EQ(parse_config_switch("NO"), false);
    for (const auto& n : kSwitchNames) EXPECT_EQ(parse_config_switch(n.name), n.value);
    EXPECT_EQ(parse_config_switch("maybe"), std::nullopt);
}

TEST(ModeNames, ConnectorSpecs) {
    auto spec = parse_connector_spec("static");
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->kind, ConnectorKind::Static);
    spec = parse_connector_spec("exec:/usr/bin/find-peer --fast");
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->kind, ConnectorKind::Exec);
    EXPECT_EQ(spec->command, "/usr/bin/find-peer --fast");
    spec = parse_connector_spec("etcd");
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->kind, ConnectorKind::Etcd);
    for (const char* bad :
         {"", "exec", "exec:", "exec:  ", "static:x", "Static", "dns:x", ":x", "etcd:x"})
        EXPECT_EQ(parse_connector_spec(bad), std::nullopt) << bad;
    EXPECT_EQ(connector_spellings(), "static, exec:<command> or etcd");
}

}  // namespace
}  // namespace nb
