#include "agent/control/protocol.hpp"

#include "base/net/netns.hpp"

#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "base/memory.hpp"
#include "base/printable.hpp"

namespace nb {

std::optional<PeerState> peer_state_from_string(std::string_view s) {
    return value_of(kPeerStateNames, s);
}

namespace {

using Json = nlohmann::json;

// Appends JSON to one reply through nlohmann's own serializer: its escaping and number
// formats, and invalid UTF-8 replaced by U+FFFD (error_handler_t::replace), so the reply
// is valid JSON whatever bytes a field holds (a connector's stderr). Only the keys and
// punctuation of a peer object are written here: a DOM of 100k peers would cost more
// than the rest of a `status -d` round trip.
class Writer {
  public:
    explicit Writer(std::string& out)
        : out_(out),
          ser_(nlohmann::detail::output_adapter<char>(out), ' ', Json::error_handler_t::replace) {}

    void raw(std::string_view s) { out_.append(s); }
    void value(const Json& v) { ser_.dump(v, false, false, 0); }
    // Integers and booleans as nlohmann writes them (plain decimal, true/false), without
    // a trip through its serializer: eight of a peer's fields, 100k peers a reply.
    template <typename Int>
    void integer(Int v) {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, r.ptr);
    }
    void boolean(bool v) { out_.append(v ? "true" : "false"); }

    void str(std::string_view s) {
        if (plain(s)) {
            // Keys, addresses and states, most of a big reply: what nlohmann writes for
            // them, without its per-byte UTF-8 decoding (at 100k peers, that decoding
            // took 2.5 times as long as all the rest of the reply).
            out_.append(1, '"').append(s).append(1, '"');
            return;
        }
        // One string value, reused: no allocation per field.
        scratch_.get_ref<std::string&>().assign(s);
        value(scratch_);
    }

    void strs(const std::vector<std::string>& v) {
        out_.append(1, '[');
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) out_.append(1, ',');
            str(v[i]);
        }
        out_.append(1, ']');
    }

  private:
    // Only ASCII that JSON does not escape: nlohmann would write it as it is.
    static bool plain(std::string_view s) {
        static constexpr auto kPlain = [] {
            std::array<bool, 256> t{};
            for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
            return t;
        }();
        // Branch-free and unrolled: this reads most of a reply's bytes (100k peers in a
        // microbench: 30.6 ms a reply without the unrolling, 27.1 with it).
        bool ok = true;
#pragma GCC unroll 8
        for (char c : s) ok &= kPlain[static_cast<unsigned char>(c)];
        return ok;
    }

    std::string& out_;
    nlohmann::detail::serializer<Json> ser_;
    Json scratch_ = Json::string_t();
};

void write_peer(Writer& w, const PeerStatus& p) {
    w.raw("{\"public_key\":");
    w.str(p.public_key);
    w.raw(",\"allowed_ips\":");
    w.strs(p.allowed_ips);
    w.raw(",\"state\":");
    w.str(to_string(p.state));
    w.raw(",\"endpoint\":");
    w.str(p.endpoint);
    w.raw(",\"wake_endpoint\":");
    w.str(p.wake_endpoint);
    w.raw(",\"state_since_ms\":");
    w.integer(p.state_since_ms);
    w.raw(",\"wakes\":");
    w.integer(p.wakes);
    w.raw(",\"held\":");
    w.integer(p.held);
    w.raw(",\"dropped\":");
    w.integer(p.dropped);
    w.raw(",\"last_wake_ms\":");
    w.value(p.last_wake_ms);
    w.raw(",\"last_activity_ms\":");
    w.integer(p.last_activity_ms);
    w.raw(",\"lazy\":");
    w.boolean(p.lazy);
    w.raw(",\"groups\":");
    w.strs(p.groups);
    w.raw(",\"failures\":");
    w.integer(p.failures);
    w.raw(",\"retry_in_ms\":");
    w.integer(p.retry_in_ms);
    w.raw(",\"last_error\":");
    w.str(p.last_error);
    w.raw(",\"rx_bytes\":");
    w.integer(p.rx_bytes);
    w.raw(",\"tx_bytes\":");
    w.integer(p.tx_bytes);
    w.raw(",\"last_handshake_ms\":");
    w.integer(p.last_handshake_ms);
    w.raw(",\"wg_read_ms\":");
    w.integer(p.wg_read_ms);
    w.raw("}");
}

// The agent's counters that sit at the top level of the status object.
constexpr std::pair<const char*, uint64_t AgentStatus::*> kCounters[] = {
    {"lost_reports", &AgentStatus::lost_reports},
    {"lost_recovered", &AgentStatus::lost_recovered},
    {"ring_reports", &AgentStatus::ring_reports},
    {"gso_split", &AgentStatus::gso_split},
    {"gso_unsplit", &AgentStatus::gso_unsplit},
    {"wakes_queued", &AgentStatus::wakes_queued},
    {"wakes_deferred", &AgentStatus::wakes_deferred},
    {"wakes_shed", &AgentStatus::wakes_shed}};

// Everything but the peers: small, so a DOM.
Json status_head(const AgentStatus& s) {
    Json ahead = Json::array();
    for (const auto& p : s.datapath_order.ahead)
        ahead.push_back(Json{{"direction", p.direction},
                             {"hook", to_string(p.hook)},
                             {"id", p.id},
                             {"name", p.name},
                             {"priority", p.priority},
                             {"handle", p.handle}});
    Json head{
        {"interface", s.interface},
        {"version", s.version},
        {"started", s.started},
        {"uptime_s", s.uptime_s},
        {"public_key", s.public_key},
        {"listen_port", s.listen_port},
        {"wg_backend", to_string(s.wg_backend)},
        {"trigger", to_string(s.trigger)},
        {"attach_mode", to_string(s.attach_mode)},
        {"trigger_reason", s.trigger_reason},
        {"lazy", s.lazy},
        {"inactivity_threshold_ms", s.inactivity_threshold_ms},
        {"counts", {{"idle", s.idle}, {"connecting", s.connecting}, {"connected", s.connected}}},
        {"datapath_order",
         {{"checked", s.datapath_order.checked},
          {"error", s.datapath_order.error},
          {"ahead", std::move(ahead)}}},
        {"wireguard",
         {{"state", s.wireguard}, {"since", s.wireguard_since}, {"error", s.wireguard_error}}}};
    for (const auto& [key, member] : kCounters) head[key] = s.*member;
    if (s.store)
        head["store"] = Json{{"kind", "etcd"},
                             {"state", to_string(s.store->state)},
                             {"mesh", s.store->mesh},
                             {"nodes", s.store->nodes},
                             {"revision", s.store->revision},
                             {"registered", s.store->registered},
                             {"range_reads", s.store->range_reads},
                             {"streams", s.store->streams},
                             {"requests", s.store->requests}};
    return head;
}

[[noreturn]] void bad_field(const std::string& field, const char* expected) {
    throw std::runtime_error("status: field \"" + field + "\" is not " + expected);
}

// The checks below take the field's name in two parts and join them only on error: for
// 100k peers, building "peers[N].key" for every field would cost more than checking it.

const Json& member(const Json& obj, const std::string& prefix, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end())
        throw std::runtime_error("status: field \"" + prefix + key + "\" is missing");
    return *it;
}

// Fields added after the first release: an older agent does not send them, so a missing
// one keeps its default; present with the wrong type is still an error.
const Json* optional_member(const Json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

std::string as_string(const Json& v, const std::string& prefix, const char* key) {
    if (!v.is_string()) bad_field(prefix + key, "a string");
    return v.get<std::string>();
}

bool as_bool(const Json& v, const std::string& prefix, const char* key) {
    if (!v.is_boolean()) bad_field(prefix + key, "a boolean");
    return v.get<bool>();
}

uint64_t as_u64(const Json& v, const std::string& prefix, const char* key) {
    if (!v.is_number_unsigned()) bad_field(prefix + key, "a non-negative integer");
    return v.get<uint64_t>();
}

int64_t as_i64(const Json& v, const std::string& prefix, const char* key) {
    if (v.is_number_unsigned()) {
        if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
            bad_field(prefix + key, "an int64");
        return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (!v.is_number_integer()) bad_field(prefix + key, "an integer");
    return v.get<int64_t>();
}

double as_double(const Json& v, const std::string& prefix, const char* key) {
    if (!v.is_number()) bad_field(prefix + key, "a number");
    return v.get<double>();
}

std::vector<std::string> as_strings(const Json& v, const std::string& prefix, const char* key) {
    if (!v.is_array()) bad_field(prefix + key, "an array");
    std::vector<std::string> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string()) bad_field(prefix + key + "[" + std::to_string(i) + "]", "a string");
        out.push_back(v[i].get<std::string>());
    }
    return out;
}

std::string get_string(const Json& obj, const std::string& prefix, const char* key) {
    return as_string(member(obj, prefix, key), prefix, key);
}

// A field that names a value of E by E's table; with `empty_is_none`, "" names none.
template <NamedEnum E>
std::optional<E> get_enum(const Json& obj, const std::string& prefix, const char* key,
                          bool empty_is_none) {
    const std::string name = get_string(obj, prefix, key);
    if (empty_is_none && name.empty()) return std::nullopt;
    if (auto v = parse_enum<E>(name)) return v;
    throw std::runtime_error("status: field \"" + prefix + key +
                             "\": " + expected_one_of(enum_names(E{}), printable(name, 32)));
}

uint64_t get_u64(const Json& obj, const std::string& prefix, const char* key) {
    return as_u64(member(obj, prefix, key), prefix, key);
}

int64_t get_i64(const Json& obj, const std::string& prefix, const char* key) {
    return as_i64(member(obj, prefix, key), prefix, key);
}

uint32_t get_u32(const Json& obj, const std::string& prefix, const char* key) {
    const uint64_t v = get_u64(obj, prefix, key);
    if (v > UINT32_MAX) bad_field(prefix + key, "a uint32");
    return static_cast<uint32_t>(v);
}

DatapathOrderStatus order_from_json(const Json& j) {
    if (!j.is_object()) bad_field("datapath_order", "an object");
    DatapathOrderStatus o;
    o.checked = as_bool(member(j, "datapath_order.", "checked"), "datapath_order.", "checked");
    o.error = get_string(j, "datapath_order.", "error");
    const auto& ahead = member(j, "datapath_order.", "ahead");
    if (!ahead.is_array()) bad_field("datapath_order.ahead", "an array");
    for (size_t i = 0; i < ahead.size(); ++i) {
        const std::string prefix = "datapath_order.ahead[" + std::to_string(i) + "].";
        if (!ahead[i].is_object()) bad_field(prefix.substr(0, prefix.size() - 1), "an object");
        ProgramAheadStatus p;
        p.direction = get_string(ahead[i], prefix, "direction");
        p.hook = *get_enum<AttachMode>(ahead[i], prefix, "hook", false);
        p.id = get_u32(ahead[i], prefix, "id");
        p.name = get_string(ahead[i], prefix, "name");
        p.priority = get_u32(ahead[i], prefix, "priority");
        p.handle = get_u32(ahead[i], prefix, "handle");
        o.ahead.push_back(std::move(p));
    }
    return o;
}

StoreStatus store_from_json(const Json& j) {
    if (!j.is_object()) bad_field("store", "an object");
    StoreStatus st;
    st.state = *get_enum<StoreState>(j, "store.", "state", false);
    st.mesh = get_string(j, "store.", "mesh");
    st.nodes = get_u64(j, "store.", "nodes");
    st.revision = get_i64(j, "store.", "revision");
    st.registered = as_bool(member(j, "store.", "registered"), "store.", "registered");
    st.range_reads = get_u64(j, "store.", "range_reads");
    st.streams = get_u64(j, "store.", "streams");
    st.requests = get_u64(j, "store.", "requests");
    return st;
}

PeerStatus peer_from_json(const Json& j, size_t index) {
    const std::string prefix = "peers[" + std::to_string(index) + "].";
    if (!j.is_object()) bad_field("peers[" + std::to_string(index) + "]", "an object");
    PeerStatus p;
    p.public_key = get_string(j, prefix, "public_key");
    p.allowed_ips = as_strings(member(j, prefix, "allowed_ips"), prefix, "allowed_ips");
    const std::string state = get_string(j, prefix, "state");
    auto st = peer_state_from_string(state);
    if (!st) {
        throw std::runtime_error("status: field \"" + prefix + "state\" has unknown state \"" +
                                 state + "\" (expected " + name_list(kPeerStateNames) + ")");
    }
    p.state = *st;
    p.endpoint = get_string(j, prefix, "endpoint");
    // Optional: agents from before issue 18 do not send them.
    if (auto* v = optional_member(j, "wake_endpoint"))
        p.wake_endpoint = as_string(*v, prefix, "wake_endpoint");
    if (auto* v = optional_member(j, "state_since_ms"))
        p.state_since_ms = as_i64(*v, prefix, "state_since_ms");
    p.wakes = get_u64(j, prefix, "wakes");
    p.held = get_u64(j, prefix, "held");
    p.dropped = get_u64(j, prefix, "dropped");
    // nlohmann reads "null" back for a non-finite value; -1 is the documented "never".
    const auto& lw = member(j, prefix, "last_wake_ms");
    p.last_wake_ms = lw.is_null() ? -1 : as_double(lw, prefix, "last_wake_ms");
    p.last_activity_ms = get_i64(j, prefix, "last_activity_ms");
    if (auto* v = optional_member(j, "lazy")) p.lazy = as_bool(*v, prefix, "lazy");
    if (auto* v = optional_member(j, "groups")) p.groups = as_strings(*v, prefix, "groups");
    if (auto* v = optional_member(j, "failures")) {
        const uint64_t f = as_u64(*v, prefix, "failures");
        if (f > UINT32_MAX) bad_field(prefix + "failures", "a uint32");
        p.failures = static_cast<uint32_t>(f);
    }
    if (auto* v = optional_member(j, "retry_in_ms"))
        p.retry_in_ms = as_i64(*v, prefix, "retry_in_ms");
    if (auto* v = optional_member(j, "last_error"))
        p.last_error = as_string(*v, prefix, "last_error");
    if (auto* v = optional_member(j, "rx_bytes")) p.rx_bytes = as_u64(*v, prefix, "rx_bytes");
    if (auto* v = optional_member(j, "tx_bytes")) p.tx_bytes = as_u64(*v, prefix, "tx_bytes");
    if (auto* v = optional_member(j, "last_handshake_ms"))
        p.last_handshake_ms = as_i64(*v, prefix, "last_handshake_ms");
    if (auto* v = optional_member(j, "wg_read_ms")) p.wg_read_ms = as_i64(*v, prefix, "wg_read_ms");
    return p;
}

}  // namespace

nlohmann::json to_json(const PeerStatus& p) {
    std::string text;
    Writer w(text);
    write_peer(w, p);
    return Json::parse(text);
}

std::string status_reply_text(const AgentStatus& s, size_t peers_hint,
                              const PeerStatusSource& next) {
    std::string out;
    // ~300 bytes per peer; reserving avoids repeated copies of a multi-megabyte buffer.
    out.reserve(256 + peers_hint * 360);
    if (peers_hint > 10000) advise_huge_pages(out.data(), out.capacity());
    Writer w(out);
    w.raw("{\"ok\":true,\"status\":");
    w.value(status_head(s));
    // The peers go last, streamed into the object the head opened.
    out.pop_back();
    w.raw(",\"peers\":[");
    PeerStatus p;
    for (bool first = true; next(p); first = false) {
        if (!first) w.raw(",");
        write_peer(w, p);
    }
    w.raw("]}}");
    return out;
}

std::string status_summary_text(const AgentStatus& s) {
    std::string out;
    Writer w(out);
    w.raw("{\"ok\":true,\"status\":");
    w.value(status_head(s));
    w.raw("}");
    return out;
}

std::string status_reply_text(const AgentStatus& s) {
    size_t i = 0;
    return status_reply_text(s, s.peers.size(), [&](PeerStatus& p) {
        if (i == s.peers.size()) return false;
        p = s.peers[i++];
        return true;
    });
}

AgentStatus agent_status_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::runtime_error("status: not a JSON object");
    AgentStatus s;
    s.interface = get_string(j, "", "interface");
    s.wg_backend = *get_enum<WgBackend>(j, "", "wg_backend", false);
    s.trigger = get_enum<TriggerEngine>(j, "", "trigger", true);
    s.attach_mode = get_enum<AttachMode>(j, "", "attach_mode", true);
    if (optional_member(j, "trigger_reason"))
        s.trigger_reason = get_string(j, "", "trigger_reason");
    s.lazy = as_bool(member(j, "", "lazy"), "", "lazy");
    // Optional: agents from before issue 18 do not send them.
    if (auto* v = optional_member(j, "version")) s.version = as_string(*v, "", "version");
    if (auto* v = optional_member(j, "started")) s.started = as_string(*v, "", "started");
    if (auto* v = optional_member(j, "uptime_s")) s.uptime_s = as_i64(*v, "", "uptime_s");
    if (auto* v = optional_member(j, "public_key")) s.public_key = as_string(*v, "", "public_key");
    if (auto* v = optional_member(j, "listen_port")) {
        const uint64_t port = as_u64(*v, "", "listen_port");
        if (port > 65535) bad_field("listen_port", "a port (0-65535)");
        s.listen_port = static_cast<uint16_t>(port);
    }
    if (auto* v = optional_member(j, "inactivity_threshold_ms")) {
        s.inactivity_threshold_ms = as_i64(*v, "", "inactivity_threshold_ms");
        if (s.inactivity_threshold_ms < 0)
            bad_field("inactivity_threshold_ms", "a non-negative integer");
    }
    const auto& counts = member(j, "", "counts");
    if (!counts.is_object()) bad_field("counts", "an object");
    s.idle = get_u64(counts, "counts.", "idle");
    s.connecting = get_u64(counts, "counts.", "connecting");
    s.connected = get_u64(counts, "counts.", "connected");
    // Optional: agents from before overrun recovery, GSO cutting or wake admission do
    // not send them.
    for (const auto& [key, member] : kCounters)
        if (auto* v = optional_member(j, key)) s.*member = as_u64(*v, "", key);
    // Optional: agents from before the order check do not send it.
    if (auto* v = optional_member(j, "datapath_order")) s.datapath_order = order_from_json(*v);
    // Optional: agents from before WireGuard's health was reported.
    if (auto* v = optional_member(j, "wireguard")) {
        if (!v->is_object()) bad_field("wireguard", "an object");
        s.wireguard = get_string(*v, "wireguard.", "state");
        s.wireguard_since = get_string(*v, "wireguard.", "since");
        s.wireguard_error = get_string(*v, "wireguard.", "error");
    }
    if (auto* v = optional_member(j, "store")) s.store = store_from_json(*v);
    // Only a reply with detail lists peers.
    const auto* peers = optional_member(j, "peers");
    if (!peers) return s;
    if (!peers->is_array()) bad_field("peers", "an array");
    s.has_peers = true;
    s.peers.reserve(peers->size());
    for (size_t i = 0; i < peers->size(); ++i) s.peers.push_back(peer_from_json((*peers)[i], i));
    return s;
}

std::string default_run_dir() {
    std::string dir = kDefaultRunDir;
    if (auto name = netns_name()) dir.append("/netns/").append(*name);
    return dir;
}

std::string socket_path(const std::string& run_dir, const std::string& interface) {
    return run_dir + "/" + interface + ".sock";
}

}  // namespace nb
