#include "agent/wg/wg_health.hpp"

#include <net/if.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/wg/wireguard_go.hpp"
#include "base/blocking.hpp"
#include "base/enum_names.hpp"
#include "base/notify.hpp"
#include "base/time.hpp"

namespace nb {

namespace {

using SteadyClock = std::chrono::steady_clock;

int ifindex_of(const std::string& name) {
    return static_cast<int>(::if_nametoindex(name.c_str()));
}

std::string ms_text(uint64_t ns) {
    return std::to_string(ns / 1000000) + " ms";
}

uint64_t mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

const char* to_string(WgHealthState s) {
    static constexpr EnumName<WgHealthState> kNames[] = {
        {WgHealthState::Ok, "ok"},
        {WgHealthState::NotAnswering, "not answering"},
        {WgHealthState::Lost, "lost"},
    };
    return name_of(kNames, s, "ok");
}

WgHealth::WgHealth(Options opts)
    : opts_(std::move(opts)),
      ctl_(opts_.interface, opts_.socket_dir),
      efd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (efd_.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    ifindex_ = ifindex_of(opts_.interface);
    if (ifindex_ == 0) throw WgError("interface " + opts_.interface + " not found", WgFault::Gone);
    ctl_.set_timeout(opts_.timeout);
    ctl_.set_parking([this](std::unique_ptr<UapiExchange> ex) {
        std::lock_guard lock(mu_);
        parked_.push_back(std::move(ex));
    });
    thread_ = std::thread([this] { run(); });
}

WgHealth::~WgHealth() {
    stop();
}

void WgHealth::stop() {
    change_and_notify_all(mu_, cv_, [this] { stop_ = true; });
    if (thread_.joinable()) thread_.join();
}

std::string WgHealth::unavailable_reason() const {
    std::lock_guard lock(mu_);
    switch (state_.load()) {
        case WgHealthState::Ok:
            return {};
        case WgHealthState::NotAnswering:
            return "WireGuard not answering: " + reason_;
        case WgHealthState::Lost:
            return "WireGuard lost: " + reason_;
    }
    return {};
}

WgHealthStatus WgHealth::status() const {
    std::lock_guard lock(mu_);
    WgHealthStatus s;
    s.state = state_.load();
    if (s.state != WgHealthState::Ok) {
        s.since = rfc3339(since_ms_);
        s.error = reason_;
    }
    return s;
}

void WgHealth::failed(const WgError& e) {
    if (e.fault == WgFault::NoAnswer)
        mark(WgHealthState::NotAnswering, e.what());
    else if (e.fault == WgFault::Gone)
        mark(WgHealthState::Lost, e.what());
    else
        throw e;  // WireGuard answered: an error of the request, not of WireGuard
    throw unavailable();
}

WgError WgHealth::unavailable() const {
    return WgError(unavailable_reason(),
                   state_.load() == WgHealthState::Lost ? WgFault::Gone : WgFault::NoAnswer);
}

WgDevice WgHealth::get_device() {
    if (!available()) throw unavailable();
    try {
        return ctl_.get_device();
    } catch (const WgError& e) {
        failed(e);
    }
}

void WgHealth::set_device(const DeviceUpdate& update) {
    if (!available()) throw unavailable();
    try {
        ctl_.set_device(update);
    } catch (const WgError& e) {
        failed(e);
    }
}

void WgHealth::mark(WgHealthState to, const std::string& reason) {
    std::lock_guard lock(mu_);
    WgHealthState from = state_.load();
    // Lost is the worse news and stays until WireGuard answers again.
    if (from == to || from == WgHealthState::Lost) return;
    since_ms_ = unix_ms();
    reason_ = reason;
    state_.store(to);
    if (to == WgHealthState::Lost) {
        awaiting_resume_ = false;
        push_event({WgHealthEvent::Kind::Lost, reason, {}, 0, {}});
    } else {
        spdlog::warn("WireGuard on {} not answering: {}; requests fail at once until it does",
                     opts_.interface, reason);
    }
    cv_.notify_all();
}

void WgHealth::push_event(WgHealthEvent ev) {
    events_.push_back(std::move(ev));
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(efd_.get(), &one, sizeof one);
}

std::vector<WgHealthEvent> WgHealth::take_events() {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(efd_.get(), &count, sizeof count);
    std::lock_guard lock(mu_);
    std::vector<WgHealthEvent> out(std::make_move_iterator(events_.begin()),
                                   std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
}

void WgHealth::resume(int ifindex) {
    change_and_notify_all(mu_, cv_, [&] {
        ifindex_ = ifindex;
        awaiting_resume_ = false;
        reason_.clear();
        state_.store(WgHealthState::Ok);
    });
}

void WgHealth::run() {
    mark_thread_off_loop();  // its waits on wireguard-go are what spares the loop them
    std::unique_lock lock(mu_);
    while (!stop_) {
        cv_.wait_for(lock, opts_.check_every);
        if (stop_) break;
        lock.unlock();
        try {
            probe();
        } catch (const std::exception& e) {
            spdlog::error("WireGuard probe on {}: {}", opts_.interface, e.what());
        }
        lock.lock();
    }
}

void WgHealth::probe() {
    const int now_index = ifindex_of(opts_.interface);
    int watched = 0;
    bool waiting = false;
    {
        std::lock_guard lock(mu_);
        watched = ifindex_;
        waiting = awaiting_resume_;
        for (auto& ex : parked_) doubtful_.push_back(std::move(ex));
        parked_.clear();
    }
    WgHealthState state = state_.load();
    if (state == WgHealthState::Ok) {
        if (now_index == 0)
            mark(WgHealthState::Lost, "device " + opts_.interface + " is gone");
        else if (now_index != watched)
            mark(WgHealthState::Lost, "device " + opts_.interface + " was replaced (ifindex " +
                                          std::to_string(watched) + ", now " +
                                          std::to_string(now_index) + ")");
        return;
    }
    if (waiting) return;
    if (state == WgHealthState::Lost) {
        // What the old daemon had read dies with it; a new one starts empty.
        doubtful_.clear();
    } else {
        finish_doubtful();
    }
    if (now_index == 0) {
        mark(WgHealthState::Lost, "device " + opts_.interface + " is gone");
        reading_.reset();
        restart_if_ours();
        return;
    }
    // Nothing is read while a request we gave up on may still land: it would change what
    // was read behind the agent's back.
    if (!doubtful_.empty()) return;
    if (!reading_) {
        try {
            reading_ = std::make_unique<UapiExchange>(ctl_.socket_path(), "get=1\n\n",
                                                      std::chrono::milliseconds(1000));
        } catch (const WgError& e) {
            // Nobody on the socket while the device is there: its daemon is on its way
            // out (the device goes with it), and a new one could not have it yet.
            if (e.fault == WgFault::Gone)
                mark(WgHealthState::Lost,
                     "wireguard-go UAPI socket " + ctl_.socket_path() + ": " + e.what());
            return;
        }
    }
    // No limit overall: it may take a stopped daemon hours to answer.
    UapiExchange::State st = reading_->run(opts_.check_every);
    if (st == UapiExchange::State::Pending) return;
    std::unique_ptr<UapiExchange> done = std::move(reading_);
    if (st == UapiExchange::State::Failed) return;  // died while answering: seen next round
    WgHealthEvent ev;
    try {
        ev.device = parse_uapi_get_reply(done->reply());
    } catch (const WgError& e) {
        spdlog::warn("WireGuard probe on {}: {}", opts_.interface, e.what());
        return;
    }
    ev.kind = WgHealthEvent::Kind::Answering;
    ev.ifindex = now_index;
    ev.took = std::chrono::milliseconds((mono_ns() - done->started_ns()) / 1000000);
    std::lock_guard lock(mu_);
    if (stop_ || state_.load() == WgHealthState::Ok) return;
    awaiting_resume_ = true;
    push_event(std::move(ev));
}

void WgHealth::finish_doubtful() {
    for (auto it = doubtful_.begin(); it != doubtful_.end();) {
        UapiExchange& ex = **it;
        if (ex.run(std::chrono::milliseconds(20)) == UapiExchange::State::Pending) {
            ++it;
            continue;
        }
        const std::string age = ms_text(mono_ns() - ex.started_ns());
        if (ex.state() == UapiExchange::State::Failed) {
            spdlog::info("WireGuard on {}: a request that timed out ended after {}: {}",
                         opts_.interface, age, ex.error());
        } else if (ex.request().starts_with("set=")) {
            std::string result;
            try {
                result = "errno=" + std::to_string(uapi_set_reply_errno(ex.reply()));
            } catch (const WgError& e) {
                result = e.what();
            }
            spdlog::info(
                "WireGuard on {}: a request that timed out was answered after {} ({}); "
                "the agent's state stands and WireGuard is made to agree with it",
                opts_.interface, age, result);
        }
        it = doubtful_.erase(it);
    }
}

void WgHealth::restart_if_ours() {
    if (!opts_.restart || SteadyClock::now() < next_restart_) return;
    spdlog::warn("starting wireguard-go for {} again (the agent started it)", opts_.interface);
    try {
        start_wireguard_go(opts_.interface, opts_.socket_dir);
        restart_delay_ = std::chrono::milliseconds(1000);
    } catch (const std::exception& e) {
        spdlog::error("starting wireguard-go for {} again: {}", opts_.interface, e.what());
        restart_delay_ = std::min(restart_delay_ * 2, std::chrono::milliseconds(30000));
    }
    next_restart_ = SteadyClock::now() + restart_delay_;
}

}  // namespace nb
