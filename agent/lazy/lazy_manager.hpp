// The lazy connection manager: owns every peer's state machine and drives WireGuard,
// the datapath and the connectors from activity events and a periodic tick.
// Single-threaded: all calls come from the engine's event loop.
//
//   Idle --packet/remote/group--> Connecting --first reply or handshake--> Connected
//     ^                              |  (connector, then endpoint set)        |
//     +--- failure/timeout (backoff) +<------------- inactivity -------------+
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/lazy/datapath_plan.hpp"
#include "agent/lazy/lazy_counters.hpp"
#include "agent/lazy/lazy_defaults.hpp"
#include "agent/lazy/peer_state.hpp"
#include "agent/lazy/peer_status.hpp"
#include "agent/lazy/peer_table.hpp"
#include "agent/lazy/ports.hpp"
#include "agent/lazy/trace_event.hpp"
#include "agent/lazy/wake_admission.hpp"
#include "agent/lazy/wake_phases.hpp"
#include "base/log_storm.hpp"
#include "base/time.hpp"

namespace nb {

class NodeDirectory;

struct LazyOptions {
    std::string interface;
    // The fleet's directory, for peers with `Connector = etcd`; none without a store.
    std::shared_ptr<const NodeDirectory> fleet;
    bool lazy = true;
    uint32_t max_held = kDefaultMaxHeld;
    std::chrono::milliseconds exec_timeout = kDefaultExecTimeout;
    // Wake (trigger) to completed handshake; beyond it the wake failed.
    std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
    std::chrono::milliseconds inactivity_threshold = kDefaultInactivityThreshold;
    // After the n-th failed wake in a row, no new wake for base * 2^(n-1), at most max.
    std::chrono::milliseconds backoff_base = kDefaultConnectBackoff;
    std::chrono::milliseconds backoff_max{5 * 60 * 1000};
    // Without a first reply, WireGuard's handshake time is polled this often at least.
    std::chrono::milliseconds handshake_poll{1000};
    // ... and this often while packets wait for the proof (within a fifth of the time).
    std::chrono::milliseconds handshake_poll_fast{5};
    // Bulk WireGuard work (failing expired wakes, admitting queued ones) is cut into
    // chunks that take about this long, one per turn of the event loop.
    std::chrono::milliseconds bulk_budget{10};
    // A handshake shows before WireGuard has sent the packets it queued for it; if its
    // byte counter never shows them (dropped in WireGuard), the proof stands after this.
    std::chrono::milliseconds flush_grace{250};
    // Wakes per second of peers without a proven handshake since their last failure
    // (agent/lazy/wake_admission.hpp); more wait their turn. 0: no limit.
    uint32_t wake_rate = 0;
    // The clock the manager reads for "now" (CLOCK_MONOTONIC ns, as the datapath stamps):
    // tests give it one they move by hand, so they never sleep. Empty: monotonic_ns.
    // How long WireGuard took to answer is always measured on the real clock.
    std::function<uint64_t()> clock;
    // Unix time in ms, for the times status shows (state since, last activity): tests give
    // one that follows `clock`, so two readings of the same state agree. Empty: unix_ms.
    std::function<int64_t()> unix_clock;
};

// What a network-map update changes, by peer.
struct MapDiff {
    uint64_t added = 0, removed = 0, changed = 0, unchanged = 0;
};

// What reconcile() changed in WireGuard.
struct ReconcileCounts {
    uint64_t added = 0;    // peers WireGuard lacked (a new device lacks them all)
    uint64_t fixed = 0;    // peers it had otherwise than the agent
    uint64_t removed = 0;  // peers it had that the agent does not manage
    bool device = false;   // private key, listen port or fwmark set again
};

class LazyManager {
  public:
    using TraceFn = std::function<void(const TraceEvent&)>;

    // `datapath` and `sink` may be null in eager mode (no programs attached).
    LazyManager(LazyOptions opts, WgControl& wg, HoldDatapath* datapath, PacketSink* sink,
                ConnectQueue& connects, TraceFn trace);
    LazyManager(const LazyManager&) = delete;  // the key index points into peers_
    LazyManager& operator=(const LazyManager&) = delete;

    // Installs the first network map in WireGuard and the datapath: lazy peers Idle
    // (no endpoint, no keepalive); never-lazy peers, or all in eager mode, Connected
    // with their endpoints. Validation (connector specs, capacity) throws before
    // anything is applied. `update` carries device settings to apply in the same
    // transaction.
    //
    // `current`: what WireGuard has now, when the interface existed before this run. A
    // peer of the map with a live session there (a handshake less than
    // kSessionLifetime ago, and an endpoint) is adopted Connected and left alone, so a
    // restart costs the remote's traffic nothing.
    void install(std::vector<PeerSpec> peers, DeviceUpdate update = {},
                 const WgDevice* current = nullptr);

    // Moves to a new network map, touching only what differs: added and removed
    // peers, changed allowed IPs, endpoints, keys, keepalives, connectors, groups.
    // Untouched peers keep their sessions and state. Validation throws before
    // anything is applied; with dry_run nothing is applied at all.
    MapDiff apply(std::vector<PeerSpec> peers, DeviceUpdate update, bool dry_run);

    // Memory held by the peer table and its index (what an idle peer costs the agent).
    size_t table_bytes() const { return table_.bytes(); }

    void on_held_packet(uint32_t id, std::span<const uint8_t> packet, uint64_t ts_ns);
    // One held report that carried several packets (the segments of a GSO super-packet
    // the program counted once), handled in order as if each had been held alone.
    void on_held_packets(uint32_t id, std::span<const std::span<const uint8_t>> packets,
                         uint64_t ts_ns);
    // The UDP engine: WireGuard sent a handshake initiation to an idle peer's listener
    // (it has a packet for the peer and queued it).
    void on_trigger(uint32_t id, uint64_t ts_ns);
    // First ingress traffic from a peer whose slot was Hold or Confirm.
    void on_rx_wake(uint32_t id, uint64_t ts_ns);
    void on_connect_done(const ConnectPool::Completion& done);
    // Several completions at once (one event-loop pass): their endpoints go to
    // WireGuard in one request instead of one request per peer.
    void on_connect_batch(std::span<const ConnectPool::Completion> done);
    // Deadlines, handshake polls, inactivity and must-be-connected peers. Call often
    // enough (tick_interval()); `now_ns` is CLOCK_MONOTONIC.
    void tick(uint64_t now_ns);
    std::chrono::milliseconds tick_interval() const;

    // Back to Idle now (operator request; inactivity uses the same path).
    void make_idle(const WgKey& key, const std::string& reason);
    // Connects an Idle peer now through its connector, as if traffic had arrived (an
    // operator's pre-warming before a planned burst): no admission queue, no backoff.
    // Returns false when the peer was already Connecting or Connected. Throws
    // std::invalid_argument for an unknown peer, std::runtime_error without WireGuard.
    bool wake(const WgKey& key);
    // A Connected peer's remote moved (the store published a new endpoint, see
    // agent/fleet): WireGuard sends to `ep` from now on, without a new wake. Idle and
    // Connecting peers are left alone: their next wake or running connect asks the
    // connector, which already has the new endpoint. Returns whether WireGuard was told.
    // Throws std::invalid_argument for an unknown peer, WgError when WireGuard refuses.
    bool peer_moved(const WgKey& key, const SockAddr& ep);
    // wake() for every member of a group; returns how many started. Throws
    // std::invalid_argument for an unknown group.
    size_t wake_group(const std::string& group);

    // Lazy mode at runtime. Turning it on needs a datapath: the engine loads one and
    // passes it to attach_datapath first when the agent started eager.
    void set_lazy(bool lazy);
    bool lazy() const { return opts_.lazy; }
    // The agent's inactivity threshold from now on (peers with their own keep theirs);
    // the next tick scans with it, so peers already quiet that long go Idle at once.
    void set_inactivity_threshold(std::chrono::milliseconds d);
    std::chrono::milliseconds inactivity_threshold() const { return opts_.inactivity_threshold; }
    bool has_datapath() const { return dp_ != nullptr; }
    void attach_datapath(HoldDatapath* datapath, PacketSink* sink);

    // For a clean exit: every peer gets its endpoint and keepalive back, so the
    // interface keeps working without the agent.
    void restore_all();

    // WireGuard (the daemon or the device) is gone, and its peers with it: every peer is
    // Idle from now on, without a word to WireGuard (agent/lazy/wg_recovery.cpp).
    void wireguard_lost(const std::string& reason);
    // WireGuard answers again, and `dev` is what it has: makes it agree with the agent
    // (peers added, removed, made idle again or given their endpoint, allowed IPs, keys;
    // the device settings in `update` where they differ) in one request. Throws WgError.
    ReconcileCounts reconcile(const WgDevice& dev, DeviceUpdate update);

    // Whether anyone reads the trace now; without, events that are only for the trace
    // (drops) are not built. Default: always.
    void set_trace_wanted(std::function<bool()> wanted) { trace_wanted_ = std::move(wanted); }

    // Handshake polls read WireGuard off the loop: `start` begins a read (false: one is
    // still running) whose result the caller hands to on_device_read. Without it, polls
    // read on the spot (see agent/wg/device_reader.hpp for when each fits).
    void set_background_read(std::function<bool()> start) { background_read_ = std::move(start); }
    // `dev` none: the read failed with `error`.
    void on_device_read(std::optional<WgDevice> dev, const std::string& error, uint64_t took_ns,
                        uint64_t now_ns);

    // Counts and settings; with `detail`, every peer's status too.
    LazyStatus status(bool detail) const;
    // What the manager counted since it began (agent/lazy/lazy_counters.hpp).
    const LazyCounters& counters() const { return counters_; }
    // Peers in a state now, without a walk over the table.
    uint64_t count(PeerState s) const { return table_.count(s); }
    // How long the phases of wakes and idle transitions took, since the manager began.
    WakePhases wake_phases() const { return phases_.snapshot(); }
    // Its `total` alone: trigger to Connected, for every wake the agent started.
    const HistogramSnapshot& time_to_connected() const { return phases_.total.snapshot(); }
    // The statuses of the peers `filter` selects (every peer when it is empty), one after
    // the other into a reused object (for a big `status -d` reply, see
    // status_reply_text). Valid until the manager changes. A whole key or an address costs
    // a lookup or one pass over the allowed IPs; only the selected peers' are built.
    PeerStatusSource peer_statuses(const PeerFilter& filter) const;
    PeerStatusSource peer_statuses() const;
    const ManagedPeer* find(const WgKey& key) const { return table_.find(key); }
    // Every peer, free ids left out (a debug bundle reads what it must hide).
    template <typename F>
    void for_each_peer(F&& f) const {
        for (const ManagedPeer& p : table_)
            if (p.in_use) f(p);
    }
    size_t size() const { return table_.size(); }
    // Every peer's allowed IPs, one after the other (what routes through the interface).
    std::vector<IpPrefix> allowed_ips() const { return table_.allowed_ips(); }
    // Current specs, in id order (for the state file).
    std::vector<PeerSpec> specs() const { return table_.specs(); }

    // Whether WireGuard's tx counter shows the packets replayed while the handshake ran.
    static bool staged_sent(const WakeState& w, uint64_t tx_bytes);
    // Packets kept for a peer whose wake waits for admission: a sweep queues thousands
    // of peers, and each must cost little.
    static constexpr size_t kHeldWhileQueued = 4;
    // How long a queued (or refused) peer's further packets are dropped in the datapath
    // before the manager looks at one again.
    static constexpr uint64_t kQueuedMuteNs = 1000000000ull;
    // More unproven peers than this waiting for a handshake proof at once get no fast
    // handshake polls (poll_handshakes).
    static constexpr size_t kFastPollCrowd = 64;
    // For this long after its endpoint is set, a peer's handshake is polled for at the
    // fast pace (a fifth of the loop's time at most: see next_read_ns).
    static constexpr std::chrono::milliseconds kRecentEndpoint{2000};
    // Status's transfer and handshake figures of awake peers are at most this old,
    // unless reading the device takes longer than a hundredth of it: a read of every peer
    // to refresh a few awake peers' figures must not cost the loop more than 1 %.
    static constexpr std::chrono::seconds kFiguresEvery{10};
    // The keepalive (s) an operator's wake of a peer without one sets until Connected.
    static constexpr uint16_t kPrewarmKeepalive = 25;

  private:
    struct Prepared {
        ManagedPeer peer;
        bool connect_now = false;  // must be connected and its endpoint resolved
        bool live = false;         // WireGuard has a live session: keep it, Connected
    };
    Prepared prepare(PeerSpec spec, uint32_t id,
                     std::unordered_map<std::string, std::shared_ptr<Connector>>& connectors);
    // The config part of a peer; its state and wake state stay.
    void assign_config(ManagedPeer& p, PeerSpec spec, std::shared_ptr<Connector> connector) const;
    std::shared_ptr<Connector> connector_for(
        const std::optional<std::string>& spec, const WgKey& key,
        std::unordered_map<std::string, std::shared_ptr<Connector>>& made) const;
    const std::shared_ptr<Connector>& connector_of(const ManagedPeer& p) const {
        return p.extra && p.extra->connector ? p.extra->connector : static_connector_;
    }
    // An Idle peer is woken by its own traffic (held packet, UDP trigger, lost report):
    // unless it backs off, which drops what woke it. False when it backs off.
    // Tells the datapath to drop the peer's packets unreported until then (0: no more),
    // for as long as the manager would drop them itself.
    void mute(const ManagedPeer& p, uint64_t until_ns);
    // A "drop" trace event for the peer (with `more` fields), if one is due: once a second
    // per peer, and only while someone reads the trace.
    void trace_drop(ManagedPeer& p, uint64_t now_ns, DropEvent::Reason reason,
                    const std::function<void(DropEvent&)>& more);
    // The trigger's packet is summarized only for a wake that starts: under a sweep
    // most packets find their peer backing off or queued, and must cost little.
    bool wake_idle(ManagedPeer& p, uint64_t ts_ns, TriggerEvent::Cause cause,
                   std::span<const uint8_t> packet = {});
    // Back to Idle without a failure to remember: the wake state goes.
    void forget_wake(ManagedPeer& p);
    // Network maps (agent/lazy/map_update.cpp).
    struct MapChanges;
    MapChanges diff_map(const std::vector<PeerSpec>& specs) const;
    void queue_new_peers(const std::vector<Prepared>& fresh, DeviceUpdate& update,
                         bool remove_stale) const;
    void plan_new_peers(DatapathPlan& plan, const std::vector<Prepared>& fresh) const;
    void queue_map_ops(const MapChanges& c, const std::vector<PeerSpec>& specs,
                       const std::vector<Prepared>& fresh, DeviceUpdate& update,
                       std::vector<std::optional<SockAddr>>& new_endpoints) const;
    DatapathPlan plan_map(const MapChanges& c, const std::vector<PeerSpec>& specs,
                          const std::vector<Prepared>& fresh) const;
    // The datapath's part, then WireGuard's; the first is undone if the second fails.
    // For apply: a crash point between them, and no WireGuard request with nothing in it.
    void commit(DatapathPlan& plan, const DeviceUpdate& update, bool is_apply);
    void adopt_new_peers(std::vector<Prepared>& fresh, uint64_t now_ns);
    // Removed peers leave WireGuard's books and the table (their ids are freed after).
    void forget_removed(const std::vector<uint32_t>& removed);
    // Peers a map added to a group, or moved into one, while another member is
    // Connected: they wake now, as the group would have woken them.
    void join_awake_groups(const std::vector<uint32_t>& ids);
    bool must_connect(const ManagedPeer& p) const { return !opts_.lazy || !p.lazy; }
    ManagedPeer* by_id(uint32_t id) { return table_.by_id(id); }
    // `detail`: the group's name for WakeReason::Group (in the trace's reason).
    void start_connect(ManagedPeer& p, uint64_t ts_ns, WakeReason why,
                       const std::string& detail = {});
    // Packets dropped in user space: the peer's count and the manager's.
    void count_drop(ManagedPeer& p, uint64_t n = 1) {
        p.agent_dropped += n;
        counters_.packets_dropped += n;
    }
    // Wakes the queue lets through now (agent/lazy/wake_admission.hpp).
    void admit_queued_wakes(uint64_t now_ns);
    void wake_groups(const ManagedPeer& p, uint64_t ts_ns);
    // Whether a group's wake may start this member now: groups multiply a sweep's
    // wakes, so unproven members wait their turn (admission) like any unproven wake.
    bool admitted_with_group(const ManagedPeer& p, uint64_t now_ns) {
        return p.proven || admission_.request(p.id, now_ns) == WakeAdmission::Verdict::Now;
    }
    void set_endpoint(ManagedPeer& p, const SockAddr& ep);
    // The part of set_endpoint after WireGuard has taken the endpoint.
    void endpoint_applied(ManagedPeer& p, const SockAddr& ep);
    // The Connecting peer of a finished job, or null; fails the wake without an endpoint.
    ManagedPeer* connect_result(const ConnectPool::Completion& done);
    // A failed wake: counted once, with its backoff and error; fail_peers then makes the
    // peers Idle in one request, and retries that on the next tick if WireGuard fails.
    void note_failure(ManagedPeer& p, WakeFailure cause, const std::string& error);
    // No new wake for base * 2^(n-1) after the n-th failure in a row, at most max.
    std::chrono::milliseconds backoff_after(uint32_t failures) const;
    void fail_peers(const std::vector<uint32_t>& ids);
    void confirm(ManagedPeer& p, const std::string& reason);
    // An operator's wake is Connected: the keepalive that started its handshake goes.
    void end_prewarm(ManagedPeer& p);
    void fail_connect(ManagedPeer& p, WakeFailure cause, const std::string& error);
    void idle_peers(const std::vector<uint32_t>& ids, const std::string& reason, bool failed);
    // Inactivity: Idle at once, but WireGuard forgets the session only once the remote's
    // copy has expired too (forget_kept_sessions). See agent/lazy/kept_sessions.cpp.
    void idle_keeping_sessions(const std::vector<uint32_t>& ids, const std::string& reason,
                               uint64_t now_ns);
    void forget_kept_sessions(uint64_t now_ns);
    // reconcile's part for one peer; `wp`: WireGuard's copy, null when it has none.
    void reconcile_peer(const ManagedPeer& p, const WgPeer* wp, DeviceUpdate& update,
                        ReconcileCounts& n) const;
    // An idle peer with an endpoint, keepalive or session in WireGuard it should not have.
    bool stray_session(const ManagedPeer& p, const WgPeer& wp,
                       const std::optional<SockAddr>& idle_ep) const;
    // Whether idling keeps sessions: only where the programs see the remote's packets.
    bool keeps_sessions() const { return dp_ && dp_->sees_traffic(); }
    // The WireGuard ops that give p its endpoint; a kept session is dropped first, so the
    // wake starts with a fresh handshake (what the handshake proof expects).
    void push_connect_ops(DeviceUpdate& u, const ManagedPeer& p, const SockAddr& ep) const;
    // Marks peers of `fresh` that WireGuard holds a live session for.
    void find_live_sessions(std::vector<Prepared>& fresh, const WgDevice& current) const;
    void drop_held(ManagedPeer& p);
    void release_hold(ManagedPeer& p, SlotMode mode);
    void replay(ManagedPeer& p, std::span<const uint8_t> packet);
    void transition(ManagedPeer& p, PeerState to, const std::string& reason);
    void poll_handshakes(uint64_t now_ns);
    void set_endpoints(std::span<const std::pair<uint32_t, SockAddr>> ready);
    void learn_bulk_cost(size_t peers, uint64_t took_ns);
    // Connecting peers whose handshake a read of WireGuard must prove; `urgent`: soon.
    std::vector<uint32_t> awaiting_proof(uint64_t now_ns, bool& urgent) const;
    void handshake_read_failed(const std::string& error, uint64_t now_ns);  // try later
    void take_handshakes(WgDevice dev, const std::vector<uint32_t>& waiting, uint64_t now_ns,
                         uint64_t took);
    void scan_inactivity(uint64_t now_ns);
    void summarize_log_storms(uint64_t now_ns);
    void go_idle_inactive(const std::vector<uint32_t>& ids, const std::string& reason,
                          uint64_t now_ns);
    void read_wireguard_activity(uint64_t now_ns);
    // Keeps what a read of the device says of peers with a wake state, for status.
    void note_wg_figures(const WgDevice& dev, uint64_t now_ns);
    // Awake peers' figures were last read that long ago: time for a read of their own.
    bool figures_due(uint64_t now_ns) const;
    void recover_lost_reports(uint64_t now_ns);
    void fill_peer_status(const ManagedPeer& p, int64_t unix_now_ms, uint64_t mono_now_ns,
                          PeerStatus& s) const;
    uint64_t last_activity_ns(const ManagedPeer& p) const;
    bool selected(const ManagedPeer& p, const PeerFilter& f, uint64_t now_ns) const;
    // The peer whose allowed IPs route `ip` (longest prefix, as WireGuard routes), or none.
    std::optional<uint32_t> route_of(const IpAddr& ip) const;

    LazyOptions opts_;
    uint64_t clock_now() const { return opts_.clock ? opts_.clock() : monotonic_ns(); }
    int64_t unix_now() const { return opts_.unix_clock ? opts_.unix_clock() : unix_ms(); }
    WakeAdmission admission_;
    WgControl& wg_;
    HoldDatapath* dp_;
    PacketSink* sink_;
    ConnectQueue& connects_;
    TraceFn trace_;
    std::function<bool()> trace_wanted_ = [] { return true; };
    PeerTable table_;
    std::shared_ptr<Connector> static_connector_;  // peers without a connector spec
    std::unordered_map<uint64_t, uint32_t> jobs_;  // job id -> peer id
    std::vector<uint32_t>
        connecting_;  // ids that were Connecting at some point since the last tick
    uint64_t next_job_ = 1;
    uint64_t next_poll_ns_ = 0;
    uint64_t next_fast_poll_ns_ = 0;
    uint64_t next_slow_tick_ns_ = 0;
    uint64_t last_wg_read_ns_ = 0;
    uint64_t next_figures_ns_ = 0;           // no read for status figures before
    bool fast_poll_ = false;                 // packets wait for a handshake proof: tick fast
    std::function<bool()> background_read_;  // see set_background_read
    bool read_in_flight_ = false;
    static constexpr size_t kMinBulkChunk = 4, kMaxBulkChunk = 1024;
    size_t bulk_chunk_ = 32;  // peers per chunk of bulk work (learn_bulk_cost)
    bool backlog_ = false;    // bulk work left for the next tick
    uint64_t next_scan_ns_ = 0;
    uint64_t lost_seen_ = 0;       // the datapath's lost-report count at the last recovery
    uint64_t lost_recovered_ = 0;  // peers woken or confirmed by recovery
    std::vector<uint32_t> kept_;   // Idle peers whose session WireGuard still keeps
    WakePhaseHistograms phases_;
    LazyCounters counters_;
    // State changes and failed wakes log one line per peer, up to a storm of them.
    LogStorm state_log_, failure_log_;
    // The shortest InactivityThreshold of any peer, as the last scan found it.
    std::chrono::milliseconds shortest_own_threshold_ = std::chrono::milliseconds::max();
};

// WireGuard's REJECT_AFTER_TIME (180 s): no side uses a session key longer after its
// handshake. Plus a margin for the handshake's round trip and the scan's pace.
inline constexpr std::chrono::seconds kSessionLifetime{185};

}  // namespace nb
