#include "base/capabilities.hpp"

#include <sys/capability.h>

#include <fstream>

namespace nb {

std::vector<std::string> missing_capabilities(const std::vector<std::string>& names) {
    std::vector<std::string> missing;
    cap_t caps = cap_get_proc();
    for (const std::string& name : names) {
        cap_value_t v{};
        cap_flag_value_t on = CAP_CLEAR;
        if (!caps || cap_from_name(name.c_str(), &v) != 0 ||
            cap_get_flag(caps, v, CAP_EFFECTIVE, &on) != 0 || on != CAP_SET)
            missing.push_back(name);
    }
    if (caps) cap_free(caps);
    return missing;
}

bool kernel_has_cap_bpf() {
    int last = 0;  // the highest capability the running kernel knows
    std::ifstream("/proc/sys/kernel/cap_last_cap") >> last;
    return last >= 39;  // CAP_BPF
}

}  // namespace nb
