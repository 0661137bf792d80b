// The agent's settings file (/etc/nbagent/IFACE.conf by default): what `run`'s options
// say, one per line, for a service that starts with no flags. Read at the start and again
// on SIGHUP. Which keys exist and what their values mean is the reader's business (the
// CLI knows `run`'s options); this is only the file's form:
//
//     # comment
//     inactivity-threshold = 20m
//     log-level = debug
//
// Keys are `run`'s long options without the dashes. Every error names file:line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nb {

struct SettingLine {
    std::string key;    // lower case, as written
    std::string value;  // trimmed; never empty
    int line = 0;
};

struct SettingsFile {
    std::string path;  // as given, for messages
    std::vector<SettingLine> lines;
    const SettingLine* find(std::string_view key) const;
    std::string where(const SettingLine& l) const;  // "path:line"
};

// Throws ConfigError ("name:line: problem") on a line that is not `key = value`, a key
// that is not made of lower-case letters, digits and dashes, an empty value, or a key
// given twice.
SettingsFile parse_settings(std::string_view text, const std::string& name);
// The file through the bounded reader (agent/config/config_file.hpp), then parsed.
SettingsFile load_settings(const std::string& path);
// The same, except that a file that is missing and not `required` (the default path,
// where --settings named none) is an empty one.
SettingsFile load_settings(const std::string& path, bool required);

// Whether a settings file may set `run`'s option `key`: not the interface (it names the
// file), not the file itself, not --print-settings (an action, not a setting).
bool settable_in_file(std::string_view key);

// Where a service's settings for `interface` live when --settings names no file.
std::string default_settings_path(const std::string& interface);

}  // namespace nb
