// SIGHUP's other half, besides the network map: the settings a running agent can change
// (as `nbagent set` does), read again with the start's order: flag > env > settings
// file > default. A `set` lasts until then, as a restart would end it too.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "agent/config/setting_values.hpp"
#include "agent/config/settings_file.hpp"
#include "agent/config/wg_quick.hpp"
#include "agent/engine/agent.hpp"
#include "base/time.hpp"

namespace nb::engine {

namespace {

bool is_live(std::string_view key) {
    return key == "log-level" || key == "inactivity-threshold" || key == "lazy-conn";
}

// The live settings the file and the start's flags, env and defaults give. Throws
// ConfigError ("path:line: problem") on an unknown key or a bad value of a live one.
LiveSettings wanted(const SettingsFile& f, const SettingsReload& r,
                    const std::vector<Setting>& known) {
    LiveSettings want = r.base;
    for (const SettingLine& l : f.lines) {
        auto fail = [&](const std::string& why) { throw ConfigError(f.where(l) + ": " + why); };
        const std::string name = "--" + l.key;
        if (!settable_in_file(l.key)) fail(l.key + " cannot be set in a settings file");
        if (std::none_of(known.begin(), known.end(),
                         [&](const Setting& s) { return s.name == name; }))
            fail("unknown setting '" + l.key + "'");
        try {
            if (l.key == "log-level" && !r.log_level_fixed) {
                const auto level = parse_enum<LogLevel>(l.value);
                if (!level) fail(name + ": " + expected_one_of(kLogLevelNames, l.value));
                want.log_level = *level;
            } else if (l.key == "inactivity-threshold" && !r.inactivity_fixed) {
                want.inactivity_threshold = parse_inactivity_threshold(l.value);
            } else if (l.key == "lazy-conn" && !r.lazy_fixed) {
                const auto v = parse_switch(l.value);
                if (!v) fail(name + ": " + expected_one_of(kSwitchNames, l.value));
                want.lazy = *v;
            }
        } catch (const std::invalid_argument& e) {
            fail(name + ": " + e.what());
        }
    }
    return want;
}

// The options only a restart changes, where the file no longer says what the agent
// started with: said, so an operator does not think SIGHUP took them.
void warn_restart_only(const SettingsFile& f, const std::vector<Setting>& started) {
    for (const Setting& s : started) {
        const std::string key = s.name.substr(2);
        if (is_live(key) || s.source == "flag" || s.source.starts_with("env ")) continue;
        const SettingLine* l = f.find(key);
        if (l && l->value != s.value)
            spdlog::warn("SIGHUP: {}: {} = {} takes effect at the next start (running with {})",
                         f.where(*l), key, l->value, s.value);
        else if (!l && s.source.starts_with("file "))
            spdlog::warn(
                "SIGHUP: {} is no longer in {}: its default takes effect at the next "
                "start (running with {})",
                key, f.path, s.value);
    }
}

}  // namespace

void Agent::reload_settings() {
    const SettingsReload& r = opts_.reload;
    if (!r.path) return;
    SettingsFile f;
    LiveSettings want;
    try {
        f = load_settings(*r.path, r.required);
        want = wanted(f, r, opts_.settings);
    } catch (const ConfigError& e) {
        spdlog::error("SIGHUP: settings: {} (no setting changed)", e.what());
        return;
    }
    warn_restart_only(f, opts_.settings);
    if (static_cast<int>(want.log_level) != spdlog::get_level()) {
        set_log_level(want.log_level);
        spdlog::info("SIGHUP: log level {}", to_string(want.log_level));
    }
    if (want.inactivity_threshold != mgr_->inactivity_threshold()) {
        mgr_->set_inactivity_threshold(want.inactivity_threshold);
        spdlog::info("SIGHUP: inactivity threshold {}", format_duration(want.inactivity_threshold));
    }
    if (want.lazy != mgr_->lazy()) {
        try {
            set_lazy(want.lazy);
            spdlog::info("SIGHUP: lazy connections {}", switch_name(want.lazy));
        } catch (const std::exception& e) {
            spdlog::error("SIGHUP: turning lazy connections {}: {}", switch_name(want.lazy),
                          e.what());
        }
    }
}

}  // namespace nb::engine
