#include "agent/etcd/gateway_json.hpp"

#include <charconv>

#include "agent/etcd/base64.hpp"

namespace nb::etcd {

namespace {

[[noreturn]] void malformed(const std::string& ctx, const std::string& why) {
    throw EtcdError(EtcdErrorKind::Malformed, "etcd: malformed reply: " + ctx + ": " + why);
}

std::string where(const std::string& ctx, const char* field) {
    return ctx.empty() ? std::string("field '") + field + "'" : ctx + ": field '" + field + "'";
}

// The field, or nullptr when missing or null; Malformed if `obj` is no object.
const Json* find(const Json& obj, const char* field, const std::string& ctx) {
    if (!obj.is_object()) malformed(ctx.empty() ? "reply" : ctx, "not a JSON object");
    auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

}  // namespace

Json parse_reply(std::string_view text, const std::string& what) {
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) {
        const std::string start(text.substr(0, 80));
        malformed(what, "not JSON: '" + start + (text.size() > 80 ? "...'" : "'"));
    }
    return j;
}

int64_t int64_field(const Json& obj, const char* field, const std::string& ctx) {
    const Json* v = find(obj, field, ctx);
    if (!v) return 0;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (!v->is_string()) malformed(where(ctx, field), "expected an int64 (a string of digits)");
    const std::string& s = v->get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        malformed(where(ctx, field), "'" + s.substr(0, 40) + "' is not an int64");
    return n;
}

bool bool_field(const Json& obj, const char* field, const std::string& ctx) {
    const Json* v = find(obj, field, ctx);
    if (!v) return false;
    if (!v->is_boolean()) malformed(where(ctx, field), "expected true or false");
    return v->get<bool>();
}

std::string string_field(const Json& obj, const char* field, const std::string& ctx) {
    const Json* v = find(obj, field, ctx);
    if (!v) return {};
    if (!v->is_string()) malformed(where(ctx, field), "expected a string");
    return v->get<std::string>();
}

std::string bytes_field(const Json& obj, const char* field, const std::string& ctx) {
    const std::string b64 = string_field(obj, field, ctx);
    auto bytes = base64_decode(b64);
    if (!bytes) malformed(where(ctx, field), "not base64");
    return std::move(*bytes);
}

const Json& object_field(const Json& obj, const char* field, const std::string& ctx) {
    static const Json kEmpty = Json::object();
    const Json* v = find(obj, field, ctx);
    if (!v) return kEmpty;
    if (!v->is_object()) malformed(where(ctx, field), "expected an object");
    return *v;
}

EtcdKeyValue decode_kv(const Json& j, const std::string& ctx) {
    EtcdKeyValue kv;
    kv.key = bytes_field(j, "key", ctx);
    kv.value = bytes_field(j, "value", ctx);
    kv.create_revision = int64_field(j, "create_revision", ctx);
    kv.mod_revision = int64_field(j, "mod_revision", ctx);
    kv.version = int64_field(j, "version", ctx);
    kv.lease = int64_field(j, "lease", ctx);
    return kv;
}

EtcdEvent decode_event(const Json& j, const std::string& ctx) {
    EtcdEvent e;
    const std::string type = string_field(j, "type", ctx);
    if (type == "DELETE") {
        e.type = EtcdEvent::Type::Delete;
    } else if (!type.empty() && type != "PUT") {
        malformed(where(ctx, "type"), "'" + type.substr(0, 40) + "' is neither PUT nor DELETE");
    }
    e.kv = decode_kv(object_field(j, "kv", ctx), ctx + ".kv");
    return e;
}

int64_t header_revision(const Json& reply, const std::string& ctx) {
    return int64_field(object_field(reply, "header", ctx), "revision", ctx + ".header");
}

EtcdRangeResult decode_range(const Json& reply) {
    EtcdRangeResult r;
    r.revision = header_revision(reply, "range");
    r.count = int64_field(reply, "count", "range");
    r.more = bool_field(reply, "more", "range");
    if (const Json* kvs = find(reply, "kvs", "range")) {
        if (!kvs->is_array()) malformed("range: field 'kvs'", "expected an array");
        for (size_t i = 0; i < kvs->size(); ++i)
            r.kvs.push_back(decode_kv((*kvs)[i], "range.kvs[" + std::to_string(i) + "]"));
    }
    return r;
}

std::optional<GatewayError> gateway_error(const Json& j) {
    if (!j.is_object()) return std::nullopt;
    auto it = j.find("error");
    if (it == j.end() || it->is_null()) return std::nullopt;
    GatewayError e;
    const Json& src = it->is_object() ? *it : j;  // a stream's error is an object
    auto msg = src.find("message");
    if (msg != src.end() && msg->is_string()) e.message = msg->get<std::string>();
    if (e.message.empty() && it->is_string()) e.message = it->get<std::string>();
    if (e.message.empty()) e.message = "an error without a message";
    for (const char* key : {"code", "grpc_code"}) {
        auto c = src.find(key);
        if (c != src.end() && c->is_number_integer()) e.code = c->get<int>();
    }
    return e;
}

WatchResponse decode_watch_line(std::string_view line) {
    const Json j = parse_reply(line, "watch stream line");
    if (auto err = gateway_error(j))
        throw EtcdError(EtcdErrorKind::Server, err->message, err->code);
    const Json* result = find(j, "result", "watch");
    if (!result) malformed("watch", "a line with neither 'result' nor 'error'");
    if (!result->is_object()) malformed("watch: field 'result'", "expected an object");
    WatchResponse w;
    w.created = bool_field(*result, "created", "watch");
    w.canceled = bool_field(*result, "canceled", "watch");
    w.compact_revision = int64_field(*result, "compact_revision", "watch");
    w.cancel_reason = string_field(*result, "cancel_reason", "watch");
    w.revision = header_revision(*result, "watch");
    if (const Json* events = find(*result, "events", "watch")) {
        if (!events->is_array()) malformed("watch: field 'events'", "expected an array");
        for (size_t i = 0; i < events->size(); ++i)
            w.events.push_back(
                decode_event((*events)[i], "watch.events[" + std::to_string(i) + "]"));
    }
    return w;
}

}  // namespace nb::etcd
