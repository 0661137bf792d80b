#include "agent/control/protocol.hpp"

#include "base/memory.hpp"
#include "base/printable.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace nb {

std::optional<PeerState> peer_state_from_string(std::string_view s) {
    if (s == "Idle") return PeerState::Idle;
    if (s == "Connecting") return PeerState::Connecting;
    if (s == "Connected") return PeerState::Connected;
    return std::nullopt;
}

nlohmann::json to_json(const PeerStatus& p) {
    return nlohmann::json{{"public_key", p.public_key},
                          {"allowed_ips", p.allowed_ips},
                          {"state", to_string(p.state)},
                          {"endpoint", p.endpoint},
                          {"wakes", p.wakes},
                          {"held", p.held},
                          {"dropped", p.dropped},
                          {"last_wake_ms", p.last_wake_ms},
                          {"last_activity_ms", p.last_activity_ms},
                          {"lazy", p.lazy},
                          {"groups", p.groups},
                          {"failures", p.failures},
                          {"retry_in_ms", p.retry_in_ms},
                          {"last_error", p.last_error}};
}

nlohmann::json to_json(const DatapathOrderStatus& o) {
    nlohmann::json ahead = nlohmann::json::array();
    for (const auto& p : o.ahead)
        ahead.push_back(nlohmann::json{{"direction", p.direction},
                                       {"hook", p.hook},
                                       {"id", p.id},
                                       {"name", p.name},
                                       {"priority", p.priority},
                                       {"handle", p.handle}});
    return nlohmann::json{{"checked", o.checked}, {"error", o.error}, {"ahead", std::move(ahead)}};
}

nlohmann::json to_json(const AgentStatus& s) {
    nlohmann::json peers = nlohmann::json::array();
    for (const auto& p : s.peers) peers.push_back(to_json(p));
    return nlohmann::json{
        {"interface", s.interface},
        {"wg_backend", s.wg_backend},
        {"trigger", s.trigger},
        {"attach_mode", s.attach_mode},
        {"trigger_reason", s.trigger_reason},
        {"lazy", s.lazy},
        {"inactivity_threshold_ms", s.inactivity_threshold_ms},
        {"counts", {{"idle", s.idle}, {"connecting", s.connecting}, {"connected", s.connected}}},
        {"lost_reports", s.lost_reports},
        {"lost_recovered", s.lost_recovered},
        {"ring_reports", s.ring_reports},
        {"gso_split", s.gso_split},
        {"gso_unsplit", s.gso_unsplit},
        {"wakes_queued", s.wakes_queued},
        {"wakes_deferred", s.wakes_deferred},
        {"wakes_shed", s.wakes_shed},
        {"datapath_order", to_json(s.datapath_order)},
        {"wireguard",
         {{"state", s.wireguard}, {"since", s.wireguard_since}, {"error", s.wireguard_error}}},
        {"peers", std::move(peers)}};
}

namespace {

constexpr auto kNeedsEscape = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = true;
    t['"'] = t['\\'] = true;
    return t;
}();

// Whether no byte of `s` needs escaping and all are ASCII, eight bytes at a time (the
// classic "has a byte less than n" and "has a zero byte" word tricks).
bool clean(std::string_view s) {
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t x;
        std::memcpy(&x, s.data() + i, 8);
        const uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
        const uint64_t hit = ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) |
                             ((backslash - ones) & ~backslash) | x;
        if (hit & highs) return false;
    }
    for (; i < s.size(); ++i)
        if (kNeedsEscape[static_cast<unsigned char>(s[i])] || (s[i] & 0x80)) return false;
    return true;
}

// Writes exactly what nlohmann's compact dump() writes, so the fast path and the DOM
// path are interchangeable (and a test can compare them byte for byte).
class Writer {
  public:
    explicit Writer(std::string& out) : out_(out) {}

    void raw(std::string_view s) { out_.append(s); }

    void str(std::string_view s) {
        out_.push_back('"');
        if (clean(s)) {
            // Keys and addresses, most of a big status reply: one pass, eight bytes at once.
            out_.append(s);
            out_.push_back('"');
            return;
        }
        size_t run = 0;  // start of the pending run of characters that need no escape
        for (size_t i = 0; i < s.size(); ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c >= 0x80) {
                // Valid UTF-8 goes as it is; an invalid byte becomes U+FFFD, as nlohmann's
                // error_handler_t::replace does: the reply must stay valid JSON.
                const size_t n = utf8_sequence_length(s, i);
                if (n > 0) {
                    i += n - 1;
                    continue;
                }
                out_.append(s.substr(run, i - run));
                out_.append("\xef\xbf\xbd");
                run = i + 1;
                continue;
            }
            if (!kNeedsEscape[c]) continue;
            out_.append(s.substr(run, i - run));
            run = i + 1;
            switch (c) {
                case '"':
                    out_.append("\\\"");
                    break;
                case '\\':
                    out_.append("\\\\");
                    break;
                case '\b':
                    out_.append("\\b");
                    break;
                case '\f':
                    out_.append("\\f");
                    break;
                case '\n':
                    out_.append("\\n");
                    break;
                case '\r':
                    out_.append("\\r");
                    break;
                case '\t':
                    out_.append("\\t");
                    break;
                default: {
                    static constexpr char kHex[] = "0123456789abcdef";
                    const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                    out_.append(esc, sizeof esc);
                }
            }
        }
        out_.append(s.substr(run));
        out_.push_back('"');
    }

    template <typename Int>
    void integer(Int v) {
        std::array<char, 24> buf;
        auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
        (void)ec;  // 24 characters hold any 64-bit integer
        out_.append(buf.data(), end);
    }

    void number(double v) {
        if (!std::isfinite(v)) {
            out_.append("null");  // what nlohmann writes for NaN and infinities
            return;
        }
#if defined(__cpp_lib_to_chars)
        std::array<char, 32> buf;
        auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
        (void)ec;  // the shortest round-trip form of a double fits in 32 characters
        std::string_view text(buf.data(), static_cast<size_t>(end - buf.data()));
        out_.append(text);
        if (text.find_first_of(".e") == std::string_view::npos) out_.append(".0");
#else
        // libstdc++ before 11 (Debian 11, Ubuntu 20.04) has no floating-point to_chars.
        out_.append(nlohmann::json(v).dump());
#endif
    }

  private:
    std::string& out_;
};

void write_peer(Writer& w, const PeerStatus& p) {
    // Keys in nlohmann's (sorted) order.
    w.raw("{\"allowed_ips\":[");
    for (size_t i = 0; i < p.allowed_ips.size(); ++i) {
        if (i) w.raw(",");
        w.str(p.allowed_ips[i]);
    }
    w.raw("],\"dropped\":");
    w.integer(p.dropped);
    w.raw(",\"endpoint\":");
    w.str(p.endpoint);
    w.raw(",\"failures\":");
    w.integer(p.failures);
    w.raw(",\"groups\":[");
    for (size_t i = 0; i < p.groups.size(); ++i) {
        if (i) w.raw(",");
        w.str(p.groups[i]);
    }
    w.raw("],\"held\":");
    w.integer(p.held);
    w.raw(",\"last_activity_ms\":");
    w.integer(p.last_activity_ms);
    w.raw(",\"last_error\":");
    w.str(p.last_error);
    w.raw(",\"last_wake_ms\":");
    w.number(p.last_wake_ms);
    w.raw(",\"lazy\":");
    w.raw(p.lazy ? "true" : "false");
    w.raw(",\"public_key\":");
    w.str(p.public_key);
    w.raw(",\"retry_in_ms\":");
    w.integer(p.retry_in_ms);
    w.raw(",\"state\":\"");
    w.raw(to_string(p.state));
    w.raw("\",\"wakes\":");
    w.integer(p.wakes);
    w.raw("}");
}

void write_order(Writer& w, const DatapathOrderStatus& o) {
    w.raw("{\"ahead\":[");
    for (size_t i = 0; i < o.ahead.size(); ++i) {
        const ProgramAheadStatus& p = o.ahead[i];
        w.raw(i ? ",{\"direction\":" : "{\"direction\":");
        w.str(p.direction);
        w.raw(",\"handle\":");
        w.integer(p.handle);
        w.raw(",\"hook\":");
        w.str(p.hook);
        w.raw(",\"id\":");
        w.integer(p.id);
        w.raw(",\"name\":");
        w.str(p.name);
        w.raw(",\"priority\":");
        w.integer(p.priority);
        w.raw("}");
    }
    w.raw("],\"checked\":");
    w.raw(o.checked ? "true" : "false");
    w.raw(",\"error\":");
    w.str(o.error);
    w.raw("}");
}

void write_status(Writer& w, const AgentStatus& s, const PeerStatusSource& next) {
    w.raw("{\"attach_mode\":");
    w.str(s.attach_mode);
    w.raw(",\"counts\":{\"connected\":");
    w.integer(s.connected);
    w.raw(",\"connecting\":");
    w.integer(s.connecting);
    w.raw(",\"idle\":");
    w.integer(s.idle);
    w.raw("},\"datapath_order\":");
    write_order(w, s.datapath_order);
    w.raw(",\"gso_split\":");
    w.integer(s.gso_split);
    w.raw(",\"gso_unsplit\":");
    w.integer(s.gso_unsplit);
    w.raw(",\"inactivity_threshold_ms\":");
    w.integer(s.inactivity_threshold_ms);
    w.raw(",\"interface\":");
    w.str(s.interface);
    w.raw(",\"lazy\":");
    w.raw(s.lazy ? "true" : "false");
    w.raw(",\"lost_recovered\":");
    w.integer(s.lost_recovered);
    w.raw(",\"lost_reports\":");
    w.integer(s.lost_reports);
    w.raw(",\"peers\":[");
    PeerStatus p;
    for (bool first = true; next(p); first = false) {
        if (!first) w.raw(",");
        write_peer(w, p);
    }
    w.raw("],\"ring_reports\":");
    w.integer(s.ring_reports);
    w.raw(",\"trigger\":");
    w.str(s.trigger);
    w.raw(",\"trigger_reason\":");
    w.str(s.trigger_reason);
    w.raw(",\"wakes_deferred\":");
    w.integer(s.wakes_deferred);
    w.raw(",\"wakes_queued\":");
    w.integer(s.wakes_queued);
    w.raw(",\"wakes_shed\":");
    w.integer(s.wakes_shed);
    w.raw(",\"wg_backend\":");
    w.str(s.wg_backend);
    w.raw(",\"wireguard\":{\"error\":");
    w.str(s.wireguard_error);
    w.raw(",\"since\":");
    w.str(s.wireguard_since);
    w.raw(",\"state\":");
    w.str(s.wireguard);
    w.raw("}}");
}

[[noreturn]] void bad_field(const std::string& field, const char* expected) {
    throw std::runtime_error("status: field \"" + field + "\" is not " + expected);
}

// The checks below take the field's name in two parts and join them only on error: for
// 100k peers, building "peers[N].key" for every field would cost more than checking it.
using Json = nlohmann::json;

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
        p.hook = get_string(ahead[i], prefix, "hook");
        p.id = get_u32(ahead[i], prefix, "id");
        p.name = get_string(ahead[i], prefix, "name");
        p.priority = get_u32(ahead[i], prefix, "priority");
        p.handle = get_u32(ahead[i], prefix, "handle");
        o.ahead.push_back(std::move(p));
    }
    return o;
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
                                 state + "\" (expected Idle, Connecting or Connected)");
    }
    p.state = *st;
    p.endpoint = get_string(j, prefix, "endpoint");
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
    return p;
}

}  // namespace

std::string status_reply_text(const AgentStatus& s, size_t peers_hint,
                              const PeerStatusSource& next) {
    std::string out;
    // ~300 bytes per peer; reserving avoids repeated copies of a multi-megabyte buffer.
    out.reserve(256 + peers_hint * 360);
    if (peers_hint > 10000) advise_huge_pages(out.data(), out.capacity());
    Writer w(out);
    w.raw("{\"ok\":true,\"status\":");
    write_status(w, s, next);
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
    s.wg_backend = get_string(j, "", "wg_backend");
    s.trigger = get_string(j, "", "trigger");
    s.attach_mode = get_string(j, "", "attach_mode");
    if (optional_member(j, "trigger_reason"))
        s.trigger_reason = get_string(j, "", "trigger_reason");
    s.lazy = as_bool(member(j, "", "lazy"), "", "lazy");
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
    // Optional: agents from before overrun recovery do not send them.
    if (optional_member(j, "lost_reports")) s.lost_reports = get_u64(j, "", "lost_reports");
    if (optional_member(j, "ring_reports")) s.ring_reports = get_u64(j, "", "ring_reports");
    if (optional_member(j, "gso_split")) s.gso_split = get_u64(j, "", "gso_split");
    if (optional_member(j, "gso_unsplit")) s.gso_unsplit = get_u64(j, "", "gso_unsplit");
    if (optional_member(j, "wakes_queued")) s.wakes_queued = get_u64(j, "", "wakes_queued");
    if (optional_member(j, "wakes_deferred")) s.wakes_deferred = get_u64(j, "", "wakes_deferred");
    if (optional_member(j, "wakes_shed")) s.wakes_shed = get_u64(j, "", "wakes_shed");
    if (optional_member(j, "lost_recovered")) s.lost_recovered = get_u64(j, "", "lost_recovered");
    // Optional: agents from before the order check do not send it.
    if (auto* v = optional_member(j, "datapath_order")) s.datapath_order = order_from_json(*v);
    // Optional: agents from before WireGuard's health was reported.
    if (auto* v = optional_member(j, "wireguard")) {
        if (!v->is_object()) bad_field("wireguard", "an object");
        s.wireguard = get_string(*v, "wireguard.", "state");
        s.wireguard_since = get_string(*v, "wireguard.", "since");
        s.wireguard_error = get_string(*v, "wireguard.", "error");
    }
    const auto& peers = member(j, "", "peers");
    if (!peers.is_array()) bad_field("peers", "an array");
    s.peers.reserve(peers.size());
    for (size_t i = 0; i < peers.size(); ++i) s.peers.push_back(peer_from_json(peers[i], i));
    return s;
}

std::string socket_path(const std::string& run_dir, const std::string& interface) {
    return run_dir + "/" + interface + ".sock";
}

}  // namespace nb
