#include "agent/control/trace_json.hpp"

#include <netinet/in.h>

#include "agent/control/protocol.hpp"
#include "base/time.hpp"

namespace nb {

namespace {

const char* proto_name(uint8_t proto) {
    switch (proto) {
        case IPPROTO_TCP:
            return "tcp";
        case IPPROTO_UDP:
            return "udp";
        case IPPROTO_ICMP:
            return "icmp";
        case IPPROTO_ICMPV6:
            return "icmpv6";
        default:
            return nullptr;
    }
}

nlohmann::json event(const char* name, int64_t unix_ms) {
    return {{"event", name}, {"ts", rfc3339(unix_ms)}};
}

nlohmann::json peer_event(const char* name, const WgKey& peer, int64_t unix_ms) {
    nlohmann::json ev = event(name, unix_ms);
    ev["peer"] = peer.base64();
    return ev;
}

void add_packet(nlohmann::json& ev, const PacketSummary& s) {
    ev["src"] = s.src.str();
    ev["dst"] = s.dst.str();
    const char* name = proto_name(s.proto);
    ev["proto"] = name ? nlohmann::json(name) : nlohmann::json(s.proto);
    if (s.sport || s.dport) {
        ev["sport"] = s.sport;
        ev["dport"] = s.dport;
    }
}

struct ToJson {
    int64_t ms;
    nlohmann::json operator()(const TriggerEvent& e) const {
        nlohmann::json ev = peer_event("trigger", e.peer, ms);
        switch (e.cause) {
            case TriggerEvent::Cause::Packet:
                if (e.packet) add_packet(ev, *e.packet);
                break;
            case TriggerEvent::Cause::Handshake:
                ev["proto"] = "wireguard-handshake";
                break;
            case TriggerEvent::Cause::LostReport:
                ev["lost_report"] = true;
                break;
            case TriggerEvent::Cause::Queued:
                ev["queued"] = true;
                break;
        }
        return ev;
    }
    nlohmann::json operator()(const DropEvent& e) const {
        nlohmann::json ev = peer_event("drop", e.peer, ms);
        switch (e.reason) {
            case DropEvent::Reason::WireGuard:
                ev["reason"] = "wireguard";
                ev["error"] = e.error;
                break;
            case DropEvent::Reason::Backoff:
                ev["reason"] = "backoff";
                ev["retry_in_ms"] = e.retry_in_ms;
                ev["error"] = e.error;
                break;
            case DropEvent::Reason::QueueFull:
                ev["reason"] = "wake queue full";
                ev["queued"] = e.queued;
                break;
        }
        return ev;
    }
    nlohmann::json operator()(const TransitionEvent& e) const {
        nlohmann::json ev = peer_event("transition", e.peer, ms);
        ev["from"] = to_string(e.from);
        ev["to"] = to_string(e.to);
        ev["reason"] = e.reason;
        if (e.latency_ms) ev["latency_ms"] = *e.latency_ms;
        if (!e.error.empty()) ev["error"] = e.error;
        if (e.ip) ev["ip"] = e.ip->str();
        return ev;
    }
    nlohmann::json operator()(const OverrunEvent& e) const {
        nlohmann::json ev = event("overrun", ms);
        ev["lost"] = e.lost;
        ev["recovered"] = e.recovered;
        return ev;
    }
    nlohmann::json operator()(const ModeEvent& e) const {
        nlohmann::json ev = event("mode", ms);
        ev["lazy"] = e.lazy;
        return ev;
    }
};

}  // namespace

nlohmann::json trace_json(const TraceEvent& ev, int64_t unix_ms) {
    return std::visit(ToJson{unix_ms}, ev);
}

nlohmann::json trace_json(const TraceEvent& ev) {
    return trace_json(ev, unix_ms());
}

}  // namespace nb
