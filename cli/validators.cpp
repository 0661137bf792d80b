// Checks of option values while argv is parsed, so a bad value is a usage error (exit 2)
// that names the option, before anything talks to the agent.
#include "base/net/ip.hpp"
#include "base/time.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

CLI::Validator duration_validator() {
    return throwing_validator<std::invalid_argument>(
        [](const std::string& text) {
            if (parse_duration(text).count() <= 0)
                throw std::invalid_argument("duration must be positive");
        },
        "DURATION");
}

CLI::Validator inactivity_validator() {
    return throwing_validator<UsageError>(
        [](const std::string& text) { parse_inactivity_threshold(text); }, "DURATION");
}

CLI::Validator switch_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            return parse_switch(text) ? std::string() : expected_one_of(kSwitchNames, text);
        },
        "on|off");
}

CLI::Validator ip_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            return IpAddr::parse(text) ? std::string() : "'" + text + "' is not an IP address";
        },
        "ADDR");
}

CLI::Validator listen_validator() {
    return throwing_validator<std::invalid_argument>(
        [](const std::string& text) { parse_listen_address(text); }, "ADDR:PORT");
}

}  // namespace nb::cli
