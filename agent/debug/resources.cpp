#include "agent/debug/resources.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "base/file_io.hpp"
#include "base/text.hpp"

namespace nb::debug {
namespace {

// The number of a "Key:\t  123 kB" line, in bytes when it has the kB unit.
uint64_t status_value(std::string_view value) {
    value = trim(value);
    const std::string digits(value.substr(0, value.find(' ')));
    uint64_t n = std::strtoull(digits.c_str(), nullptr, 10);
    if (value.ends_with("kB")) n *= 1024;
    return n;
}

uint64_t count_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    uint64_t n = 0;
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n > 0 ? n - 1 : 0;  // without the one opendir holds
}

uint64_t timeval_us(const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1'000'000 + static_cast<uint64_t>(tv.tv_usec);
}

std::string bytes_text(uint64_t bytes) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%ju bytes (%.1f MiB)", static_cast<uintmax_t>(bytes),
                  static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

std::string seconds_text(uint64_t us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(us) / 1e6);
    return buf;
}

}  // namespace

ResourceUse parse_proc_status(std::string_view status) {
    ResourceUse u;
    const std::pair<std::string_view, uint64_t ResourceUse::*> fields[] = {
        {"VmRSS", &ResourceUse::rss_bytes},
        {"VmHWM", &ResourceUse::rss_peak_bytes},
        {"RssAnon", &ResourceUse::rss_anon_bytes},
        {"RssFile", &ResourceUse::rss_file_bytes},
        {"VmSize", &ResourceUse::vm_bytes},
        {"VmSwap", &ResourceUse::swap_bytes},
        {"Threads", &ResourceUse::threads},
        {"voluntary_ctxt_switches", &ResourceUse::voluntary_switches},
        {"nonvoluntary_ctxt_switches", &ResourceUse::involuntary_switches},
    };
    while (!status.empty()) {
        const size_t eol = status.find('\n');
        const std::string_view line = status.substr(0, eol);
        status = eol == std::string_view::npos ? std::string_view() : status.substr(eol + 1);
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        for (const auto& [key, member] : fields) {
            if (line.substr(0, colon) == key) u.*member = status_value(line.substr(colon + 1));
        }
    }
    return u;
}

ResourceUse read_resource_use() {
    ResourceUse u;
    if (auto status = read_whole_file("/proc/self/status")) u = parse_proc_status(*status);
    u.fds = count_fds();
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) u.fd_limit = lim.rlim_cur;
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) == 0) {
        u.user_cpu_us = timeval_us(ru.ru_utime);
        u.system_cpu_us = timeval_us(ru.ru_stime);
    }
    return u;
}

std::string render_resources(const ResourceUse& u) {
    std::string s;
    auto line = [&s](const char* key, const std::string& value) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%-22s ", key);
        s += buf + value + "\n";
    };
    line("rss", bytes_text(u.rss_bytes));
    line("rss peak", bytes_text(u.rss_peak_bytes));
    line("rss anonymous", bytes_text(u.rss_anon_bytes) + ", heap and stacks");
    line("rss file", bytes_text(u.rss_file_bytes) + ", code and mapped files");
    line("virtual", bytes_text(u.vm_bytes));
    line("swap", bytes_text(u.swap_bytes));
    line("threads", std::to_string(u.threads));
    line("fds", std::to_string(u.fds) + " of " + std::to_string(u.fd_limit));
    line("cpu user", seconds_text(u.user_cpu_us));
    line("cpu system", seconds_text(u.system_cpu_us));
    line("context switches", std::to_string(u.voluntary_switches) + " voluntary (waits), " +
                                 std::to_string(u.involuntary_switches) +
                                 " involuntary (preempted)");
    return s;
}

}  // namespace nb::debug
