// Fakes of the lazy manager's ports (WireGuard, datapath, re-injection, connector
// queue) and a fixture around them, shared by the lazy state-machine tests. What
// the fakes record (and in which order) is what the real ports would see.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/control/trace_json.hpp"
#include "agent/lazy/lazy_manager.hpp"

namespace nb {

// Failure messages name the state instead of dumping its bytes.
inline void PrintTo(PeerState s, std::ostream* os) {
    *os << state_name(s);
}

}  // namespace nb

namespace nb::test {

inline WgKey key(uint8_t n) {
    WgKey k;
    k.bytes.fill(n);
    return k;
}

struct Log {
    std::vector<std::string> entries;
    void add(std::string s) { entries.push_back(std::move(s)); }
    // Index of the first entry starting with `prefix`, or -1.
    int find(const std::string& prefix) const {
        for (size_t i = 0; i < entries.size(); ++i)
            if (entries[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
        return -1;
    }
};

class FakeWg : public WgControl {
  public:
    explicit FakeWg(Log& log) : log_(log) {}
    WgBackend backend() const override { return WgBackend::Userspace; }
    // Peers in `handshakes` or `transfer`, with those; the others as never shaken.
    WgDevice get_device() override {
        if (down) throw WgError(unavailable_reason(), WgFault::NoAnswer);
        ++get_device_calls;
        if (dump_delay.count()) std::this_thread::sleep_for(dump_delay);
        WgDevice d;
        for (const auto& [k, sec] : handshakes) {
            WgPeer p;
            p.public_key = k;
            p.last_handshake_sec = sec;
            d.peers.push_back(p);
        }
        // Not a structured binding: clang 14 cannot capture one in the lambda.
        for (const auto& entry : transfer) {
            const auto& key = entry.first;
            auto it = std::find_if(d.peers.begin(), d.peers.end(),
                                   [&](const WgPeer& p) { return p.public_key == key; });
            if (it == d.peers.end()) {
                d.peers.emplace_back();
                it = d.peers.end() - 1;
                it->public_key = key;
            }
            it->rx_bytes = entry.second.first;
            it->tx_bytes = entry.second.second;
        }
        return d;
    }
    void set_device(const DeviceUpdate& u) override {
        if (down) throw WgError(unavailable_reason(), WgFault::NoAnswer);
        if (fail_next) {
            fail_next = false;
            throw WgError("fake failure");
        }
        if (set_delay_per_peer.count())
            std::this_thread::sleep_for(set_delay_per_peer * static_cast<int>(u.peers.size()));
        if (on_set) on_set();
        updates.push_back(u);
        for (const auto& p : u.peers)
            log_.add(std::string("wg ") + (p.remove ? "remove" : p.endpoint ? "endpoint" : "add"));
    }
    // Every operation on `k` so far, in order.
    std::vector<PeerUpdate> ops_for(const WgKey& k) const {
        std::vector<PeerUpdate> out;
        for (const auto& u : updates)
            for (const auto& p : u.peers)
                if (p.public_key == k) out.push_back(p);
        return out;
    }
    // As WgHealth while WireGuard does not answer: every call fails at once.
    bool available() const override { return !down; }
    std::string unavailable_reason() const override {
        return down ? "WireGuard not answering: fake" : "";
    }
    std::vector<DeviceUpdate> updates;
    bool fail_next = false;
    bool down = false;
    std::unordered_map<WgKey, int64_t, WgKeyHash> handshakes;  // last_handshake_sec by key
    std::unordered_map<WgKey, std::pair<uint64_t, uint64_t>, WgKeyHash> transfer;  // rx, tx
    int get_device_calls = 0;
    std::chrono::milliseconds dump_delay{0};          // how long a dump takes, as with many peers
    std::chrono::microseconds set_delay_per_peer{0};  // what each op of a set costs
    std::function<void()> on_set;  // each set that succeeds (e.g. moves the test's clock)

  private:
    Log& log_;
};

class FakeHold : public HoldDatapath {
  public:
    explicit FakeHold(Log& log) : log_(log) {}
    void install_peer(uint32_t id, std::span<const IpPrefix> r, SlotMode m) override {
        mode[id] = m;
        add_routes(id, r);
        log_.add("dp install " + std::to_string(id));
    }
    void remove_peer(uint32_t id, std::span<const IpPrefix> r) override {
        remove_routes(r);
        mode.erase(id);
        log_.add("dp remove " + std::to_string(id));
    }
    void add_routes(uint32_t id, std::span<const IpPrefix> r) override {
        for (const auto& x : r) routes[x.str()] = id;
    }
    void remove_routes(std::span<const IpPrefix> r) override {
        for (const auto& x : r) routes.erase(x.str());
    }
    SlotMode set_mode(uint32_t id, SlotMode m) override {
        static const char* names[] = {"hold ", "pass ", "confirm "};
        log_.add(std::string("dp ") + names[static_cast<int>(m)] + std::to_string(id));
        SlotMode old = mode[id];
        mode[id] = m;
        if (on_set_mode) on_set_mode(id);
        return old;
    }
    void release_pending(uint32_t id, uint32_t n) override { released[id] += n; }
    void add_pending(uint32_t id, uint32_t n) override { added[id] += n; }
    void mute(uint32_t id, uint64_t until_ns) override { muted[id] = until_ns; }
    SlotCounters counters(uint32_t id) const override {
        auto it = slots.find(id);
        return it == slots.end() ? SlotCounters{} : it->second;
    }
    uint32_t capacity() const override { return cap; }
    // As the UDP engine when `udp`: a listener address for idle peers, forwards, no
    // traffic seen.
    std::optional<SockAddr> idle_endpoint(uint32_t id) override {
        if (!udp) return std::nullopt;
        return SockAddr::parse_numeric("127.1.0.1:" + std::to_string(40000 + id));
    }
    void endpoint_set(uint32_t id, const SockAddr& ep) override {
        if (udp) log_.add("dp forward " + std::to_string(id) + " " + ep.str());
    }
    bool sees_traffic() const override { return !udp; }
    uint64_t lost_reports() const override { return lost; }
    bool take_missed(uint32_t id) override { return missed.erase(id) != 0; }
    SlotMode current_mode(uint32_t id) const override {
        auto it = mode.find(id);
        return it == mode.end() ? SlotMode::Hold : it->second;
    }
    bool udp = false;
    uint64_t lost = 0;          // what the programs count as lost reports
    std::set<uint32_t> missed;  // peers marked as having lost one
    bool held(uint32_t id) const {
        auto it = mode.find(id);
        return it != mode.end() && it->second == SlotMode::Hold;
    }
    std::map<uint32_t, SlotMode> mode;
    std::map<std::string, uint32_t> routes;  // prefix -> peer id
    std::map<uint32_t, uint32_t> released;
    std::map<uint32_t, uint32_t> added;      // add_pending: segments beyond the first
    std::map<uint32_t, uint64_t> muted;      // mute: until when (0: not muted)
    std::map<uint32_t, SlotCounters> slots;  // what the programs counted (last_tx_ns, ...)
    uint32_t cap = 1u << 20;
    std::function<void(uint32_t)> on_set_mode;  // lets a test act like the ingress program

  private:
    Log& log_;
};

class FakeSink : public PacketSink {
  public:
    explicit FakeSink(Log& log) : log_(log) {}
    bool inject(std::span<const uint8_t> p) override {
        sent.emplace_back(p.begin(), p.end());
        log_.add("inject " + std::to_string(p[0]));
        if (on_inject) on_inject();
        return reach;
    }
    std::vector<std::vector<uint8_t>> sent;
    bool reach = true;
    std::function<void()> on_inject;  // each packet (e.g. moves the test's clock)

  private:
    Log& log_;
};

class FakeQueue : public ConnectQueue {
  public:
    void submit(ConnectPool::Job job) override { jobs.push_back(std::move(job)); }
    std::vector<ConnectPool::Job> jobs;
};

inline PeerSpec spec(uint8_t n, const char* endpoint, uint16_t keepalive = 0) {
    PeerSpec s;
    s.wg.public_key = key(n);
    s.wg.allowed_ips = {*IpPrefix::parse("10.0.0." + std::to_string(n) + "/32")};
    if (endpoint) s.endpoint = endpoint;
    s.keepalive = keepalive;
    return s;
}

// A manager wired to the fakes; tests call make() (or make(options)) first.
class LazyFixture : public ::testing::Test {
  protected:
    LazyFixture() : wg(log), hold(log), sink(log) {}

    // The manager's clock, moved only by the test (LazyOptions::clock): nothing sleeps.
    // It starts where a machine's monotonic clock could be, well after boot.
    uint64_t clock_ns = 1000ull * 1000000000ull;
    uint64_t now() const { return clock_ns; }
    // Unix time moving with clock_ns, from a fixed start: status times are reproducible.
    int64_t unix_now() const {
        return 1'700'000'000'000 + static_cast<int64_t>(clock_ns / 1000000) - 1'000'000;
    }
    void wait_until(uint64_t t) { clock_ns = std::max(clock_ns, t); }

    LazyOptions options(bool lazy = true, uint32_t max_held = 128) {
        LazyOptions o;
        o.clock = [this] { return clock_ns; };
        o.unix_clock = [this] { return unix_now(); };
        o.interface = "wgt";
        o.lazy = lazy;
        o.max_held = max_held;
        return o;
    }
    void make(const LazyOptions& o) {
        mgr = std::make_unique<LazyManager>(
            o, wg, &hold, &sink, queue,
            [this](const TraceEvent& ev) { trace.push_back(trace_json(ev)); });
    }
    void make(bool lazy = true, uint32_t max_held = 128) { make(options(lazy, max_held)); }
    void install3() {
        std::vector<PeerSpec> v = {spec(1, "192.0.2.1:51820", 25), spec(2, "192.0.2.2:51820"),
                                   spec(3, nullptr)};
        mgr->install(std::move(v));
    }
    std::vector<uint8_t> pkt(uint8_t tag) { return std::vector<uint8_t>(28, tag); }
    // WireGuard's tx counter once it sent one initiation and `n` of pkt()'s packets
    // (each padded to 32 bytes in a 64-byte message).
    static uint64_t sent_after_handshake(uint64_t n) { return 148 + 64 * n; }
    ConnectPool::Completion ok(uint64_t job, const char* ep) {
        ConnectPool::Completion c;
        c.job_id = job;
        c.result.endpoint = SockAddr::parse_numeric(ep);
        return c;
    }
    const nlohmann::json* find_transition(const std::string& from, const std::string& to) {
        for (const auto& e : trace)
            if (e["event"] == "transition" && e["from"] == from && e["to"] == to) return &e;
        return nullptr;
    }

    Log log;
    FakeWg wg;
    FakeHold hold;
    FakeSink sink;
    FakeQueue queue;
    std::vector<nlohmann::json> trace;
    std::unique_ptr<LazyManager> mgr;
};

}  // namespace nb::test
