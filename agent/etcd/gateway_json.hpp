// The gateway's JSON, both ways: requests built, replies read defensively. Bytes fields
// are base64, int64 fields strings, and fields at their zero value are left out (a PUT
// event has no "type", an empty range no "kvs"). A reply that is not JSON or has a field
// of the wrong kind throws EtcdError(Malformed) naming the field; nothing crashes.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/etcd/etcd_types.hpp"

namespace nb::etcd {

using Json = nlohmann::json;

// The key to send for a range of `key` to `range_end`: etcd refuses an empty key, and
// ranges over every key ("" to "\0", what prefix_range_end("") gives) start at "\0".
inline std::string range_key(const std::string& key, const std::string& range_end) {
    return key.empty() && !range_end.empty() ? std::string(1, '\0') : key;
}

// `text` parsed, or Malformed naming `what` (e.g. "reply of /v3/kv/range").
Json parse_reply(std::string_view text, const std::string& what);

// Field readers: `ctx` names where the object is ("kvs[2]"), for the error. A missing
// field (or null) is its zero value.
int64_t int64_field(const Json& obj, const char* field, const std::string& ctx);
bool bool_field(const Json& obj, const char* field, const std::string& ctx);
std::string bytes_field(const Json& obj, const char* field, const std::string& ctx);
std::string string_field(const Json& obj, const char* field, const std::string& ctx);
// The object at `field`: an empty object if missing, Malformed if not an object.
const Json& object_field(const Json& obj, const char* field, const std::string& ctx);

EtcdKeyValue decode_kv(const Json& j, const std::string& ctx);
EtcdEvent decode_event(const Json& j, const std::string& ctx);
int64_t header_revision(const Json& reply, const std::string& ctx);
EtcdRangeResult decode_range(const Json& reply);

// The gateway's error reply ({"error","code","message"}, or in a stream {"error":{
// "grpc_code","message",...}}): its message and gRPC code, if `j` is one.
struct GatewayError {
    std::string message;
    int code = -1;
};
std::optional<GatewayError> gateway_error(const Json& j);

// One watch response, a line of the /v3/watch stream: {"result": {...}}.
struct WatchResponse {
    bool created = false;
    bool canceled = false;
    int64_t compact_revision = 0;  // > 0: the start revision was compacted away
    std::string cancel_reason;
    int64_t revision = 0;  // the header's
    std::vector<EtcdEvent> events;
};
// Throws Malformed for a line that is neither a result nor an error, and
// EtcdError(Server) for an error line.
WatchResponse decode_watch_line(std::string_view line);

}  // namespace nb::etcd
