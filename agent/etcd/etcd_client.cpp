#include "agent/etcd/etcd_client.hpp"

#include "agent/etcd/base64.hpp"
#include "agent/etcd/gateway_json.hpp"
#include "agent/etcd/gateway_transport.hpp"

namespace nb {

using etcd::base64_encode;
using etcd::Json;

std::string prefix_range_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

EtcdClient::EtcdClient(EtcdOptions options)
    : transport_(std::make_unique<etcd::GatewayTransport>(std::move(options))) {}

EtcdClient::~EtcdClient() = default;

uint64_t EtcdClient::requests() const {
    return transport_->requests();
}

EtcdRangeResult EtcdClient::range(const std::string& key, const std::string& range_end,
                                  const EtcdRangeOptions& o) {
    Json req = {{"key", base64_encode(etcd::range_key(key, range_end))}};
    if (!range_end.empty()) req["range_end"] = base64_encode(range_end);
    if (o.revision > 0) req["revision"] = std::to_string(o.revision);
    if (o.limit > 0) req["limit"] = std::to_string(o.limit);
    if (o.keys_only) req["keys_only"] = true;
    return etcd::decode_range(transport_->post("/v3/kv/range", req));
}

int64_t EtcdClient::put(const std::string& key, const std::string& value, int64_t lease) {
    Json req = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) req["lease"] = std::to_string(lease);
    return etcd::header_revision(transport_->post("/v3/kv/put", req), "put");
}

EtcdDeleteResult EtcdClient::delete_range(const std::string& key, const std::string& range_end) {
    Json req = {{"key", base64_encode(etcd::range_key(key, range_end))}};
    if (!range_end.empty()) req["range_end"] = base64_encode(range_end);
    const Json reply = transport_->post("/v3/kv/deleterange", req);
    return {etcd::header_revision(reply, "deleterange"),
            etcd::int64_field(reply, "deleted", "deleterange")};
}

EtcdTxnResult EtcdClient::put_if_mod_revision(const std::string& key, const std::string& value,
                                              int64_t mod_revision, int64_t lease) {
    Json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) put["lease"] = std::to_string(lease);
    const Json req = {{"compare", Json::array({{{"key", base64_encode(key)},
                                                {"target", "MOD"},
                                                {"result", "EQUAL"},
                                                {"mod_revision", std::to_string(mod_revision)}}})},
                      {"success", Json::array({{{"request_put", put}}})}};
    const Json reply = transport_->post("/v3/kv/txn", req, false);
    return {etcd::header_revision(reply, "txn"), etcd::bool_field(reply, "succeeded", "txn")};
}

EtcdLease EtcdClient::lease_grant(int64_t ttl_seconds) {
    // Retried like the rest: a lease granted by a member that then did not answer is
    // never used and expires after its TTL.
    const Json reply = transport_->post("/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}});
    if (auto err = etcd::string_field(reply, "error", "lease grant"); !err.empty())
        throw EtcdError(EtcdErrorKind::Server, "etcd: lease grant: " + err);
    EtcdLease l{etcd::int64_field(reply, "ID", "lease grant"),
                etcd::int64_field(reply, "TTL", "lease grant")};
    if (l.id == 0)
        throw EtcdError(EtcdErrorKind::Malformed, "etcd: lease grant: a reply without 'ID'");
    return l;
}

int64_t EtcdClient::lease_keepalive_once(int64_t id) {
    // A stream of one request: the reply is one line, {"result": {...}} (or an error).
    const Json reply = transport_->post("/v3/lease/keepalive", {{"ID", std::to_string(id)}});
    if (auto e = etcd::gateway_error(reply))
        throw EtcdError(EtcdErrorKind::Server, "etcd: lease keepalive: " + e->message, e->code);
    const Json& result = etcd::object_field(reply, "result", "lease keepalive");
    return etcd::int64_field(result, "TTL", "lease keepalive.result");
}

bool EtcdClient::lease_revoke(int64_t id) {
    try {
        transport_->post("/v3/lease/revoke", {{"ID", std::to_string(id)}});
        return true;
    } catch (const EtcdError& e) {
        constexpr int kGrpcNotFound = 5;
        if (e.kind() == EtcdErrorKind::Server && e.code() == kGrpcNotFound) return false;
        throw;
    }
}

}  // namespace nb
