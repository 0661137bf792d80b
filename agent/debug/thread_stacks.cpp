#include "agent/debug/thread_stacks.hpp"

#include <cxxabi.h>
#include <dirent.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/file_io.hpp"
#include "base/text.hpp"

namespace nb::debug {
namespace {

struct TaskInfo {
    pid_t tid = 0;
    std::string name;   // comm
    char state = '?';   // from stat
    std::string wchan;  // where the kernel has it sleep, if it does
    bool blocks_signal = false;
    bool gone = false;
};

std::vector<pid_t> list_tasks() {
    std::vector<pid_t> tids;
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return tids;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    }
    ::closedir(d);
    std::sort(tids.begin(), tids.end());
    return tids;
}

TaskInfo read_task(pid_t tid) {
    TaskInfo t;
    t.tid = tid;
    const std::string dir = "/proc/self/task/" + std::to_string(tid) + "/";
    const auto stat = read_whole_file(dir + "stat");
    if (!stat) {
        t.gone = true;
        return t;
    }
    t.state = task_state_from_stat(*stat);
    if (auto comm = read_whole_file(dir + "comm")) t.name = std::string(trim(*comm));
    if (auto wchan = read_whole_file(dir + "wchan"); wchan && trim(*wchan) != "0")
        t.wchan = std::string(trim(*wchan));
    if (auto status = read_whole_file(dir + "status"))
        t.blocks_signal = signal_blocked_in_status(*status, stack_signal());
    return t;
}

std::string demangle(const char* name) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> d(
        abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
    return status == 0 && d ? std::string(d.get()) : std::string(name);
}

// "0x... function + 0xoff [module+0xoff]". A return address is looked up one byte back:
// after a call to a function that does not return it may already be the next function.
std::string describe_frame(void* addr, bool exact) {
    const auto a = reinterpret_cast<uintptr_t>(addr);
    char buf[64];
    std::snprintf(buf, sizeof buf, "0x%016jx ", static_cast<uintmax_t>(a));
    std::string line = buf;
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(exact ? a : a - 1), &info) == 0 || !info.dli_fname) {
        return line + "??";
    }
    if (info.dli_sname && info.dli_saddr) {
        const auto off = a - reinterpret_cast<uintptr_t>(info.dli_saddr);
        std::snprintf(buf, sizeof buf, " + 0x%jx", static_cast<uintmax_t>(off));
        line += demangle(info.dli_sname) + buf;
    } else {
        line += "??";
    }
    const char* slash = std::strrchr(info.dli_fname, '/');
    const auto module_off = a - reinterpret_cast<uintptr_t>(info.dli_fbase);
    std::snprintf(buf, sizeof buf, "+0x%jx]", static_cast<uintmax_t>(module_off));
    return line + " [" + (slash ? slash + 1 : info.dli_fname) + buf;
}

std::string describe_task(const TaskInfo& t, bool self) {
    std::string s = "thread " + std::to_string(t.tid) + " \"" + t.name + "\" (state ";
    s += t.state;
    if (!t.wchan.empty()) s += ", wchan " + t.wchan;
    s += ")";
    if (self) s += ", this thread, writing the dump";
    return s + "\n";
}

std::string stack_text(const TaskInfo& t, std::chrono::milliseconds timeout) {
    if (t.state == 'Z' || t.state == 'X') return "  (exited: no stack)\n";
    // Blocked is often only for a moment (pthread_create and posix_spawn block every
    // signal around clone): the signal stays pending and is answered once it unblocks.
    const StackCapture c = capture_thread_stack(t.tid, timeout);
    if (c.outcome == StackCapture::Outcome::Gone) return "  (exited: no stack)\n";
    if (c.outcome == StackCapture::Outcome::NoAnswer && t.blocks_signal)
        return "  (blocks SIGRTMIN+3: stack not taken)\n";
    if (c.outcome == StackCapture::Outcome::NoAnswer)
        return "  (no answer within " + std::to_string(timeout.count()) + " ms: stack not taken)\n";
    std::string s;
    for (size_t i = 0; i < c.frames.size(); ++i) {
        s += "  #" + std::to_string(i) + " " + describe_frame(c.frames[i], i == 0 && c.first_is_pc);
        s += "\n";
    }
    return s;
}

}  // namespace

char task_state_from_stat(std::string_view stat) {
    const size_t close = stat.rfind(')');
    if (close == std::string_view::npos) return '?';
    const std::string_view rest = trim(stat.substr(close + 1));
    return rest.empty() ? '?' : rest.front();
}

bool signal_blocked_in_status(std::string_view status, int sig) {
    constexpr std::string_view kKey = "\nSigBlk:";
    const size_t at = status.find(kKey);
    if (at == std::string_view::npos || sig < 1 || sig > 64) return false;
    std::string_view rest = status.substr(at + kKey.size());
    rest = trim(rest.substr(0, rest.find('\n')));
    const unsigned long long mask = std::strtoull(std::string(rest).c_str(), nullptr, 16);
    return (mask >> (sig - 1)) & 1;
}

std::string thread_stacks(std::chrono::milliseconds per_thread_timeout) {
    install_thread_stack_handler();
    const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
    const std::vector<pid_t> tids = list_tasks();
    std::string out = std::to_string(tids.size()) + " threads in process " +
                      std::to_string(::getpid()) +
                      "; the [module+offset] of a frame is for `addr2line -Cfie MODULE OFFSET`\n";
    for (const pid_t tid : tids) {
        const TaskInfo t = read_task(tid);
        if (t.gone) continue;  // exited since the listing
        out += '\n';           // not "\n" + ...: GCC 12 -O3 warns falsely (-Wrestrict)
        out += describe_task(t, tid == self);
        out += stack_text(t, per_thread_timeout);
    }
    return out;
}

}  // namespace nb::debug
