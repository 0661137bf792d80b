// POSTs a JSON request to the gateway of one member after another: the current member
// first; on no reply, a timeout or a 5xx, the next, each once a round, all within the
// request timeout. Another round, after a pause, only when a member answered 5xx (it is
// up, e.g. between leaders) and the request is idempotent. Keeps idle connections per
// member for reuse, so concurrent callers each get a connection of their own. A retried
// request may have been applied by the member that did not answer in time, so only
// idempotent ones are (post's `idempotent`).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/etcd/etcd_options.hpp"
#include "agent/etcd/gateway_json.hpp"

namespace nb::etcd {

class GatewayTransport {
  public:
    // Throws std::invalid_argument for bad options (validate_etcd_options, TLS files).
    explicit GatewayTransport(EtcdOptions options);
    ~GatewayTransport();
    GatewayTransport(const GatewayTransport&) = delete;
    GatewayTransport& operator=(const GatewayTransport&) = delete;

    // The reply of a 200. Throws EtcdError: Unavailable naming every member tried and why,
    // Server with the gateway's message for a refused request, Malformed for a reply that
    // is not JSON.
    // `idempotent` false: fail over only while no member can have received the request
    // (it could not connect), so a request that must not apply twice is not sent twice.
    Json post(const std::string& path, const Json& body, bool idempotent = true);
    // HTTP requests sent, each attempt at each member.
    uint64_t requests() const { return requests_.load(); }
    const std::vector<EtcdEndpoint>& endpoints() const { return endpoints_; }

  private:
    struct Attempt;
    struct Pool;
    struct Round;
    Round round(const std::string& path, const std::string& body, bool idempotent,
                std::chrono::steady_clock::time_point deadline);
    Attempt attempt(size_t member, const std::string& path, const std::string& body,
                    std::chrono::milliseconds left);

    EtcdOptions options_;
    std::vector<EtcdEndpoint> endpoints_;
    std::unique_ptr<Pool> pool_;
    std::atomic<size_t> current_{0};
    std::atomic<uint64_t> requests_{0};
};

}  // namespace nb::etcd
