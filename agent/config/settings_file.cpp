#include "agent/config/settings_file.hpp"

#include <sys/stat.h>

#include "agent/config/config_file.hpp"
#include "agent/config/wg_quick.hpp"
#include "base/printable.hpp"
#include "base/text.hpp"

namespace nb {

namespace {

// Far more than every option of `run`, with comments; a settings file is small.
constexpr size_t kMaxSettingsBytes = 1u << 20;

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

const SettingLine* SettingsFile::find(std::string_view key) const {
    for (const auto& l : lines)
        if (l.key == key) return &l;
    return nullptr;
}

std::string SettingsFile::where(const SettingLine& l) const {
    std::string out = printable(path);
    out.append(":").append(std::to_string(l.line));
    return out;
}

SettingsFile parse_settings(std::string_view text, const std::string& name) {
    SettingsFile f;
    f.path = name;
    int number = 0;
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        std::string_view raw = text.substr(0, nl);
        text.remove_prefix(nl == text.npos ? text.size() : nl + 1);
        ++number;
        const std::string_view line = trim(raw);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        auto fail = [&](const std::string& why) {
            std::string msg = printable(name);
            msg.append(":").append(std::to_string(number)).append(": ").append(why);
            throw ConfigError(msg);
        };
        const size_t eq = line.find('=');
        if (eq == line.npos)
            fail(std::string("expected 'key = value', got '") + printable(line) + "'");
        const std::string_view key = trim(line.substr(0, eq));
        const std::string_view value = trim(line.substr(eq + 1));
        if (key.empty()) fail("no key before '='");
        for (char c : key)
            if (!key_char(c))
                fail(std::string("'") + printable(key) +
                     "' is not a setting's name (lower-case letters, digits and dashes, "
                     "as run's options without the leading --)");
        if (value.empty()) fail("no value for " + std::string(key));
        if (const SettingLine* first = f.find(key))
            fail(std::string(key) + " is already set on line " + std::to_string(first->line));
        f.lines.push_back({std::string(key), std::string(value), number});
    }
    return f;
}

SettingsFile load_settings(const std::string& path) {
    return parse_settings(read_config_file(path, kMaxSettingsBytes), path);
}

SettingsFile load_settings(const std::string& path, bool required) {
    struct stat st {};
    if (!required && ::stat(path.c_str(), &st) != 0) {
        SettingsFile none;
        none.path = path;
        return none;
    }
    return load_settings(path);
}

bool settable_in_file(std::string_view key) {
    return key != "interface" && key != "settings" && key != "print-settings";
}

std::string default_settings_path(const std::string& interface) {
    return "/etc/nbagent/" + interface + ".conf";
}

}  // namespace nb
