#include "base/contended_mutex.hpp"

#include <cxxabi.h>
#include <dlfcn.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/time.hpp"

namespace nb {

struct LockSite {
    explicit LockSite(const char* n) : name(n) {}
    const char* name;
    AtomicLatencyHistogram waits;
    // The longest wait and the holder then, together: contended lock() calls only.
    std::mutex longest_mu;
    uint64_t longest_ns = 0;
    const void* longest_holder = nullptr;

    void record(uint64_t ns, const void* holder) {
        waits.record(ns);
        std::lock_guard lock(longest_mu);
        if (ns < longest_ns) return;
        longest_ns = ns;
        longest_holder = holder;
    }
};

namespace {

struct Registry {
    std::mutex mu;
    std::vector<std::unique_ptr<LockSite>> sites;
};

// Never destroyed: a mutex in a static object may lock while statics are torn down.
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

LockSite* site_named(const char* name) {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    for (auto& s : r.sites)
        if (std::strcmp(s->name, name) == 0) return s.get();
    r.sites.push_back(std::make_unique<LockSite>(name));
    return r.sites.back().get();
}

std::string hex(uintptr_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

ContendedMutex::ContendedMutex(const char* name) : site_(site_named(name)) {}

// Not inlined (out of line in this file), so the return address is the caller's.
void ContendedMutex::lock() {
    const void* me = __builtin_return_address(0);
    if (!mu_.try_lock()) {
        const void* holder = holder_.load(std::memory_order_relaxed);
        const uint64_t start = monotonic_ns();
        mu_.lock();
        site_->record(monotonic_ns() - start, holder);
    }
    holder_.store(me, std::memory_order_relaxed);
}

bool ContendedMutex::try_lock() {
    if (!mu_.try_lock()) return false;
    holder_.store(__builtin_return_address(0), std::memory_order_relaxed);
    return true;
}

std::string describe_code_address(const void* addr) {
    if (!addr) return "unknown";
    const auto at = reinterpret_cast<uintptr_t>(addr);
    Dl_info info{};
    if (!dladdr(addr, &info) || !info.dli_fname) return hex(at);
    // The main program's module has no name in the dynamic linker's list.
    const char* module = *info.dli_fname ? info.dli_fname : program_invocation_name;
    const char* slash = std::strrchr(module, '/');
    std::string out = slash ? slash + 1 : module;
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false positive) about
    // "literal" + std::string.
    out += '+';
    out += hex(at - reinterpret_cast<uintptr_t>(info.dli_fbase));
    if (info.dli_sname && info.dli_saddr) {
        int status = 0;
        std::unique_ptr<char, decltype(&std::free)> demangled(
            abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), &std::free);
        const std::string symbol = status == 0 && demangled ? demangled.get() : info.dli_sname;
        out += " (";
        out += symbol;
        out += '+';
        out += hex(at - reinterpret_cast<uintptr_t>(info.dli_saddr));
        out += ')';
    }
    return out;
}

std::vector<LockStats> lock_snapshot() {
    std::vector<LockStats> out;
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    for (const auto& s : r.sites) {
        LockStats st{s->name, s->waits.snapshot(), {}};
        const void* holder = nullptr;
        {
            std::lock_guard longest(s->longest_mu);
            holder = s->longest_holder;
        }
        // The holder may not have stored its address yet when the wait began: "unknown".
        if (st.waits.count) st.longest_wait_holder = describe_code_address(holder);
        out.push_back(std::move(st));
    }
    return out;
}

std::string render_locks(const std::vector<LockStats>& locks) {
    std::string out;
    for (const auto& l : locks) {
        out += render_histogram("lock " + l.name, l.waits);
        if (!l.longest_wait_holder.empty()) out += " holder=" + l.longest_wait_holder;
        out += "\n";
    }
    return out;
}

}  // namespace nb
