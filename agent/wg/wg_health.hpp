// Whether wireguard-go answers, and finding out when it does again.
//
// WgHealth is the WgControl the agent's event loop uses for wireguard-go. Each call goes
// to the UAPI socket with a short timeout (500 ms by default), so a stopped daemon costs
// the loop that long once, not 10 s per call. The first call that gets no answer marks
// WireGuard "not answering", one that finds nobody there "lost"; from then on calls fail
// at once with that reason, and a probe thread with its own connections watches for the
// way back:
//  - the request that timed out is driven to its end, not closed: a resumed wireguard-go
//    applies what it had read anyway, so the probe waits for its answer rather than
//    leaving it to land after the agent has looked;
//  - then a `get=1` with all the patience it needs; when it answers, the loop gets an
//    Answering event with that dump, makes WireGuard agree with its own state
//    (LazyManager::reconcile) and calls resume();
//  - lost: the device or the daemon is gone. If the agent started wireguard-go itself,
//    the probe starts it again (1 s, then up to 30 s apart); else the operator does.
// While all is well the probe only checks, four times a second, that the device is there
// with the same ifindex: a killed wireguard-go takes its tun device with it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/wg/uapi_control.hpp"
#include "agent/wg/uapi_exchange.hpp"
#include "base/contended_mutex.hpp"
#include "base/unique_fd.hpp"

namespace nb {

enum class WgHealthState { Ok, NotAnswering, Lost };
const char* to_string(WgHealthState s);  // "ok", "not answering", "lost"

struct WgHealthEvent {
    enum class Kind { Lost, Answering };
    Kind kind = Kind::Lost;
    std::string reason;  // Lost: why
    // Answering: WireGuard as it is now (every request that was in doubt has finished),
    // the device's ifindex, and how long the dump took.
    WgDevice device;
    int ifindex = 0;
    std::chrono::milliseconds took{0};
};

struct WgHealthStatus {
    WgHealthState state = WgHealthState::Ok;
    std::string since;  // RFC 3339 UTC, "" when ok
    std::string error;  // what the failing call said, "" when ok
};

class WgHealth : public WgControl {
  public:
    struct Options {
        std::string interface;
        std::string socket_dir = "/var/run/wireguard";
        std::chrono::milliseconds timeout{500};  // each call from the loop
        std::chrono::milliseconds check_every{250};
        bool restart = false;  // start wireguard-go again when lost (the agent started it)
    };
    // The device must exist: its ifindex is the one watched.
    explicit WgHealth(Options opts);
    ~WgHealth() override;
    WgHealth(const WgHealth&) = delete;
    WgHealth& operator=(const WgHealth&) = delete;

    WgBackend backend() const override { return WgBackend::Userspace; }
    WgDevice get_device() override;
    void set_device(const DeviceUpdate& update) override;
    bool available() const override { return state_.load() == WgHealthState::Ok; }
    std::string unavailable_reason() const override;

    // Readable while events wait; take_events() returns them, oldest first.
    int event_fd() const { return efd_.get(); }
    std::vector<WgHealthEvent> take_events();
    // The loop took an Answering event and made WireGuard agree: calls go through again
    // (one that fails marks it again). `ifindex` is the device to watch from now on.
    void resume(int ifindex);
    // The limit of each call from the loop from now on (start: a whole map takes long).
    void set_call_timeout(std::chrono::milliseconds t) { ctl_.set_timeout(t); }
    WgHealthStatus status() const;
    // Ends the probe thread (before shutdown: it must not start wireguard-go again).
    void stop();

  private:
    [[noreturn]] void failed(const WgError& e);
    WgError unavailable() const;
    void mark(WgHealthState to, const std::string& reason);
    void push_event(WgHealthEvent ev);  // with mu_ held
    void run();
    void probe();
    void finish_doubtful();
    void restart_if_ours();

    Options opts_;
    UapiControl ctl_;  // the loop's
    std::atomic<WgHealthState> state_{WgHealthState::Ok};
    UniqueFd efd_;

    mutable ContendedMutex mu_{"wg health"};  // everything below up to the thread's own state
    std::condition_variable_any cv_;
    std::string reason_;
    int64_t since_ms_ = 0;  // unix ms
    int ifindex_ = 0;
    bool awaiting_resume_ = false;  // an Answering event is out: no probing until resume()
    bool stop_ = false;
    std::vector<std::unique_ptr<UapiExchange>> parked_;  // timed out on the loop
    std::deque<WgHealthEvent> events_;

    // The probe thread's own.
    std::vector<std::unique_ptr<UapiExchange>> doubtful_;
    std::unique_ptr<UapiExchange> reading_;  // its get=1
    std::chrono::steady_clock::time_point next_restart_{};
    std::chrono::milliseconds restart_delay_{1000};
    std::thread thread_;
};

}  // namespace nb
