// `run`'s settings file: its values fill the options that no flag and no env variable
// gave, and what SIGHUP needs to read it again the same way.
#include "agent/config/settings_file.hpp"
#include "agent/config/wg_quick.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

// The options an environment variable can give (resolve_lazy,
// resolve_inactivity_threshold), with the variables in the order they are read.
const std::vector<const char*>& env_vars_of(const std::string& option) {
    static const std::vector<const char*> none;
    static const std::vector<const char*> lazy = {"NB_LAZY_CONN",
                                                  "NB_ENABLE_EXPERIMENTAL_LAZY_CONN"};
    static const std::vector<const char*> inactivity = {"NB_LAZY_CONN_INACTIVITY_THRESHOLD"};
    if (option == "--lazy-conn") return lazy;
    if (option == "--inactivity-threshold") return inactivity;
    return none;
}

}  // namespace

std::optional<std::string> env_source(const std::string& option, const EnvLookup& env) {
    for (const char* var : env_vars_of(option)) {
        auto v = env(var);
        if (v && !v->empty()) return std::string("env ") + var;
    }
    return std::nullopt;
}

SettingsReload reload_sources(const CLI::App& run, const RunArgs& a, const EnvLookup& env) {
    SettingsReload r;
    if (a.settings) {
        r.path = *a.settings;
        r.required = true;
    } else {
        r.path = default_settings_path(a.interface);
    }
    auto fixed = [&](const char* name) {
        return run.get_option(name)->count() > 0 || env_source(name, env).has_value();
    };
    r.base.log_level = parse_option<LogLevel>("--log-level", a.log_level);
    r.base.inactivity_threshold = resolve_inactivity_threshold(a.inactivity_threshold, env);
    r.base.lazy = resolve_lazy(a.lazy_conn, env);
    r.log_level_fixed = fixed("--log-level");
    r.inactivity_fixed = fixed("--inactivity-threshold");
    r.lazy_fixed = fixed("--lazy-conn");
    return r;
}

std::map<std::string, std::string> apply_settings_file(CLI::App& run, const SettingsReload& reload,
                                                       const EnvLookup& env) {
    std::map<std::string, std::string> from_file;  // option -> "file path:line"
    if (!reload.path) return from_file;
    SettingsFile f;
    try {
        f = load_settings(*reload.path, reload.required);
    } catch (const ConfigError& e) {
        throw UsageError(std::string("settings: ") + e.what());
    }
    for (const SettingLine& l : f.lines) {
        const std::string where = f.where(l);
        const std::string name = "--" + l.key;
        if (!settable_in_file(l.key))
            throw UsageError(where + ": " + l.key + " cannot be set in a settings file");
        CLI::Option* opt = run.get_option_no_throw(name);
        if (!opt || opt == run.get_help_ptr() || opt->get_lnames().empty() ||
            "--" + opt->get_lnames()[0] != name)
            throw UsageError(where + ": unknown setting '" + l.key +
                             "' (settings are run's options without the leading --, see "
                             "nbagent run --help)");
        // A flag or env variable wins over the file.
        if (opt->count() > 0 || env_source(name, env)) continue;
        try {
            opt->add_result(l.value);
            opt->run_callback();
        } catch (const CLI::Error& e) {
            throw UsageError(where + ": " + e.what());  // CLI11's names the option
        }
        from_file[name] = "file " + where;
    }
    return from_file;
}

}  // namespace nb::cli
