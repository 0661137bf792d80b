#include "agent/control/request.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "agent/config/wg_quick.hpp"
#include "base/enum_names.hpp"
#include "base/printable.hpp"

namespace nb {

namespace {

std::string_view strip_nlohmann_prefix(std::string_view what) {
    // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
    if (!what.empty() && what.front() == '[') {
        auto end = what.find("] ");
        if (end != std::string_view::npos) what.remove_prefix(end + 2);
    }
    return what;
}

// Typed field readers: absent is nullopt, present with another type is an error.
std::optional<bool> opt_bool(const nlohmann::json& req, const char* name) {
    auto it = req.find(name);
    if (it == req.end()) return std::nullopt;
    if (!it->is_boolean())
        throw std::invalid_argument(std::string("\"") + name + "\" must be true or false");
    return it->get<bool>();
}

std::optional<std::string> opt_string(const nlohmann::json& req, const char* name) {
    auto it = req.find(name);
    if (it == req.end()) return std::nullopt;
    if (!it->is_string())
        throw std::invalid_argument(std::string("\"") + name + "\" must be a string");
    return it->get<std::string>();
}

ControlRequest apply_from_json(const nlohmann::json& req) {
    ApplyRequest a;
    a.dry_run = opt_bool(req, "dry_run").value_or(false);
    a.config_path = opt_string(req, "config_path");
    a.config_text = opt_string(req, "config_text");
    a.file = opt_string(req, "file");
    a.source = opt_string(req, "source");
    if (a.config_path.has_value() == a.config_text.has_value())
        throw std::invalid_argument(
            "apply needs exactly one of \"config_path\" or \"config_text\"");
    if (a.config_path && a.file)
        throw std::invalid_argument("\"file\" goes with \"config_text\", not \"config_path\"");
    for (const auto* path : {&a.config_path, &a.file})
        if (*path && ((*path)->empty() || (**path)[0] != '/'))
            throw std::invalid_argument("\"file\" and \"config_path\" must be absolute paths");
    return a;
}

bool is_base64_text(const std::string& s) {
    return s.find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
           std::string::npos;
}

// "peer": a public key or its start; "ip": an address. Absent: empty / none.
std::string opt_key_prefix(const nlohmann::json& req) {
    auto key = opt_string(req, "peer");
    if (!key) return {};
    if (key->empty() || key->size() > 44 || !is_base64_text(*key))
        throw std::invalid_argument(
            "\"peer\" must be a public key or its start (1 to 44 base64 characters), not \"" +
            printable(*key, 48) + "\"");
    return *key;
}

std::optional<IpAddr> opt_ip(const nlohmann::json& req) {
    auto ip = opt_string(req, "ip");
    if (!ip) return std::nullopt;
    auto addr = IpAddr::parse(*ip);
    if (!addr)
        throw std::invalid_argument("\"ip\" must be an IPv4 or IPv6 address, not \"" +
                                    printable(*ip, 48) + "\"");
    return addr;
}

ControlRequest status_from_json(const nlohmann::json& req) {
    StatusRequest s;
    s.detail = opt_bool(req, "detail").value_or(false);
    if (auto state = opt_string(req, "state")) {
        s.filter.state = value_of(kPeerStateNames, *state);
        if (!s.filter.state)
            throw std::invalid_argument("\"state\" must be " + name_list(kPeerStateNames) +
                                        ", not \"" + printable(*state, 32) + "\"");
    }
    s.filter.key_prefix = opt_key_prefix(req);
    s.filter.ip = opt_ip(req);
    s.filter.failing = opt_bool(req, "failing").value_or(false);
    if (!s.filter.empty()) s.detail = true;  // a filter asks for peers
    return s;
}

ControlRequest trace_from_json(const nlohmann::json& req) {
    TraceRequest t;
    t.filter.key_prefix = opt_key_prefix(req);
    t.filter.ip = opt_ip(req);
    if (auto events = req.find("events"); events != req.end()) {
        if (!events->is_array()) throw std::invalid_argument("\"events\" must be a list");
        for (const auto& e : *events) {
            const std::string name = e.is_string() ? e.get<std::string>() : e.dump();
            if (std::find(std::begin(kTraceEventNames), std::end(kTraceEventNames), name) ==
                std::end(kTraceEventNames))
                throw std::invalid_argument(
                    "\"events\": unknown event \"" + printable(name, 32) +
                    "\" (expected trigger, drop, transition, overrun or mode)");
            t.filter.events.push_back(name);
        }
    }
    t.filter.failures = opt_bool(req, "failures").value_or(false);
    if (auto last = req.find("last"); last != req.end()) {
        // A positive integer, whichever kind nlohmann read it as.
        if (!last->is_number_integer() || last->get<int64_t>() <= 0)
            throw std::invalid_argument("\"last\" must be a positive whole number");
        t.last = static_cast<uint64_t>(last->get<int64_t>());
    }
    if (auto since = req.find("since_ms"); since != req.end()) {
        if (!since->is_number_integer())
            throw std::invalid_argument("\"since_ms\" must be a unix time in ms");
        t.since_ms = since->get<int64_t>();
    }
    t.follow = opt_bool(req, "follow").value_or(!t.last && !t.since_ms);
    return t;
}

ControlRequest peer_idle_from_json(const nlohmann::json& req) {
    auto text = opt_string(req, "public_key");
    if (!text) throw std::invalid_argument("peer_idle needs \"public_key\" (base64)");
    auto key = WgKey::from_base64(*text);
    if (!key) throw std::invalid_argument("\"public_key\" is not a WireGuard key");
    return PeerIdleRequest{*key};
}

ControlRequest set_lazy_from_json(const nlohmann::json& req) {
    auto lazy = opt_bool(req, "lazy");
    if (!lazy) throw std::invalid_argument("set_lazy needs \"lazy\": true|false");
    return SetLazyRequest{*lazy};
}

constexpr EnumName<DebugRequest::Step> kDebugSteps[] = {
    {DebugRequest::Step::Start, "start"},
    {DebugRequest::Step::Collect, "collect"},
    {DebugRequest::Step::Poll, "poll"},
};
// A day: longer is a typo, and the profile runs in the agent until it ends.
constexpr uint64_t kMaxProfileMs = 24ull * 3600 * 1000;

ControlRequest debug_from_json(const nlohmann::json& req) {
    DebugRequest d;
    const std::string step = opt_string(req, "step").value_or("");
    auto parsed = value_of(kDebugSteps, step);
    if (!parsed) throw std::invalid_argument("debug needs \"step\": " + name_list(kDebugSteps));
    d.step = *parsed;
    if (auto p = req.find("profile_ms"); p != req.end()) {
        if (!p->is_number_unsigned() || p->get<uint64_t>() > kMaxProfileMs)
            throw std::invalid_argument("\"profile_ms\" must be a whole number of ms up to a day");
        d.profile_ms = p->get<uint64_t>();
    }
    d.dir = opt_string(req, "dir").value_or("");
    if (d.step != DebugRequest::Step::Start && d.dir.empty())
        throw std::invalid_argument("debug " + step + " needs \"dir\" (what start answered)");
    return d;
}

// A group name as the config takes it; a longer one names no group (and the error
// quotes a bounded piece of it).
constexpr size_t kMaxGroupNameOnWire = 64;

ControlRequest peer_wake_from_json(const nlohmann::json& req) {
    PeerWakeRequest w;
    w.group = opt_string(req, "group");
    auto keys = req.find("public_keys");
    if (keys != req.end()) {
        if (!keys->is_array() || keys->empty() || keys->size() > 65536)
            throw std::invalid_argument("\"public_keys\" must be a list of 1 to 65536 keys");
        for (const auto& k : *keys) {
            auto key = k.is_string() ? WgKey::from_base64(k.get<std::string>()) : std::nullopt;
            if (!key)
                throw std::invalid_argument(
                    "\"public_keys\": " +
                    printable(k.is_string() ? k.get<std::string>() : k.dump(), 48) +
                    " is not a WireGuard key");
            w.public_keys.push_back(*key);
        }
    }
    if (w.group.has_value() == !w.public_keys.empty())
        throw std::invalid_argument("peer_wake needs exactly one of \"public_keys\" or \"group\"");
    if (w.group && (w.group->empty() || w.group->size() > kMaxGroupNameOnWire))
        throw std::invalid_argument("\"group\" must be a group name of 1 to 64 characters");
    return w;
}

ControlRequest set_from_json(const nlohmann::json& req) {
    SetRequest s;
    if (const auto level = opt_string(req, "log_level")) {
        s.log_level = parse_enum<LogLevel>(*level);
        if (!s.log_level)
            throw std::invalid_argument("\"log_level\": " +
                                        expected_one_of(kLogLevelNames, printable(*level, 32)));
    }
    if (auto t = req.find("inactivity_threshold_ms"); t != req.end()) {
        constexpr uint64_t kMaxMs = 10ull * 365 * 24 * 3600 * 1000;
        if (!t->is_number_unsigned() || t->get<uint64_t>() > kMaxMs ||
            t->get<uint64_t>() <
                static_cast<uint64_t>(std::chrono::milliseconds(kMinInactivityThreshold).count()))
            throw std::invalid_argument(
                "\"inactivity_threshold_ms\" must be a whole number of ms, at least 10000");
        s.inactivity_threshold = std::chrono::milliseconds(t->get<uint64_t>());
    }
    if (!s.log_level && !s.inactivity_threshold)
        throw std::invalid_argument("set needs \"log_level\" or \"inactivity_threshold_ms\"");
    return s;
}

// The known commands, in the order of ControlRequest's alternatives: the one list of
// command names, for parsing, encoding and the error that lists them.
struct Command {
    std::string_view name;
    ControlRequest (*from_json)(const nlohmann::json& req);
};
constexpr Command kCommands[] = {
    {"status", status_from_json},       {"trace", trace_from_json},
    {"peer_idle", peer_idle_from_json}, {"apply", apply_from_json},
    {"set_lazy", set_lazy_from_json},   {"debug", debug_from_json},
    {"peer_wake", peer_wake_from_json}, {"set", set_from_json},
};
static_assert(std::size(kCommands) == std::variant_size_v<ControlRequest>);

}  // namespace

ControlRequest request_from_json(const nlohmann::json& req) {
    const std::string cmd = opt_string(req, "cmd").value_or("");
    for (const Command& c : kCommands)
        if (c.name == cmd) return c.from_json(req);
    throw std::invalid_argument("unknown command \"" + printable(cmd, 64) + "\" (expected " +
                                name_list(kCommands) + ")");
}

std::string_view command_name(const ControlRequest& r) {
    return kCommands[r.index()].name;
}

bool may_be_long(const ControlRequest& r) {
    return std::holds_alternative<ApplyRequest>(r);
}

nlohmann::json to_json(const ControlRequest& r) {
    struct Encode {
        nlohmann::json operator()(const StatusRequest& s) const {
            nlohmann::json j = {{"detail", s.detail}};
            const PeerFilter& f = s.filter;
            if (f.state) j["state"] = name_of(kPeerStateNames, *f.state, "Idle");
            if (!f.key_prefix.empty()) j["peer"] = f.key_prefix;
            if (f.ip) j["ip"] = f.ip->str();
            if (f.failing) j["failing"] = true;
            return j;
        }
        nlohmann::json operator()(const TraceRequest& t) const {
            nlohmann::json j = nlohmann::json::object();
            if (!t.filter.key_prefix.empty()) j["peer"] = t.filter.key_prefix;
            if (t.filter.ip) j["ip"] = t.filter.ip->str();
            if (!t.filter.events.empty()) j["events"] = t.filter.events;
            if (t.filter.failures) j["failures"] = true;
            if (t.last) j["last"] = *t.last;
            if (t.since_ms) j["since_ms"] = *t.since_ms;
            if (t.last || t.since_ms) j["follow"] = t.follow;
            return j;
        }
        nlohmann::json operator()(const PeerIdleRequest& p) const {
            return {{"public_key", p.public_key.base64()}};
        }
        nlohmann::json operator()(const ApplyRequest& a) const {
            nlohmann::json j = {{"dry_run", a.dry_run}};
            if (a.config_path) j["config_path"] = *a.config_path;
            if (a.config_text) j["config_text"] = *a.config_text;
            if (a.file) j["file"] = *a.file;
            if (a.source) j["source"] = *a.source;
            return j;
        }
        nlohmann::json operator()(const SetLazyRequest& s) const { return {{"lazy", s.lazy}}; }
        nlohmann::json operator()(const PeerWakeRequest& w) const {
            nlohmann::json j = nlohmann::json::object();
            if (w.group) j["group"] = *w.group;
            if (!w.public_keys.empty()) {
                j["public_keys"] = nlohmann::json::array();
                for (const auto& k : w.public_keys) j["public_keys"].push_back(k.base64());
            }
            return j;
        }
        nlohmann::json operator()(const SetRequest& s) const {
            nlohmann::json j = nlohmann::json::object();
            if (s.log_level) j["log_level"] = to_string(*s.log_level);
            if (s.inactivity_threshold)
                j["inactivity_threshold_ms"] =
                    static_cast<uint64_t>(s.inactivity_threshold->count());
            return j;
        }
        nlohmann::json operator()(const DebugRequest& d) const {
            nlohmann::json j = {{"step", name_of(kDebugSteps, d.step, "start")}};
            if (d.profile_ms) j["profile_ms"] = d.profile_ms;
            if (!d.dir.empty()) j["dir"] = d.dir;
            return j;
        }
    };
    nlohmann::json j = std::visit(Encode{}, r);
    j["cmd"] = command_name(r);
    return j;
}

ParsedRequest parse_request(std::string_view line) {
    auto fail = [](std::string error) { return ParsedRequest{std::nullopt, std::move(error)}; };
    nlohmann::json req;
    try {
        req = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
        // nlohmann quotes the bytes it stopped at: made printable.
        return fail("invalid JSON: " + printable(strip_nlohmann_prefix(e.what())));
    }
    if (!req.is_object()) return fail("invalid request: expected a JSON object");
    auto cmd = req.find("cmd");
    if (cmd == req.end()) return fail("invalid request: missing \"cmd\"");
    if (!cmd->is_string()) return fail("invalid request: \"cmd\" must be a string");
    try {
        return {request_from_json(req), {}};
    } catch (const std::invalid_argument& e) {
        return fail(e.what());
    }
}

bool starts_as_apply(std::string_view line) {
    size_t i = 0;
    auto skip_ws = [&] {
        while (i < line.size() &&
               (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
            ++i;
    };
    auto take = [&](std::string_view token) {
        skip_ws();
        if (line.substr(i, token.size()) != token) return false;
        i += token.size();
        return true;
    };
    // The name between quotes, with nothing in between (no string built: GCC 12 at -O3
    // warns about the concatenation it would take, -Wrestrict, a false positive).
    auto take_quoted = [&](std::string_view name) {
        skip_ws();
        auto at = [&](size_t pos, std::string_view tok) {
            return pos <= line.size() && line.substr(pos, tok.size()) == tok;
        };
        if (!at(i, "\"") || !at(i + 1, name) || !at(i + 1 + name.size(), "\"")) return false;
        i += name.size() + 2;
        return true;
    };
    return take("{") && take("\"cmd\"") && take(":") && take_quoted(command_name(ApplyRequest{}));
}

}  // namespace nb
