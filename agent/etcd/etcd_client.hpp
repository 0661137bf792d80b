// An etcd v3 client over the members' gRPC-JSON gateway (/v3/kv/*, /v3/lease/*): blocking
// calls for worker threads, safe to call from several at once. Each call goes to the
// current member and fails over to the others (GatewayTransport); failures throw EtcdError.
// Watches are EtcdWatch (etcd_watch.hpp). With https, the process must ignore SIGPIPE (the
// agent does, at start): OpenSSL writes to a socket the member closed without
// MSG_NOSIGNAL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "agent/etcd/etcd_options.hpp"
#include "agent/etcd/etcd_types.hpp"

namespace nb {

namespace etcd {
class GatewayTransport;
}

// The range_end that makes a range (or watch) cover every key starting with `prefix`:
// the prefix with its last byte below 0xff incremented (and the 0xff bytes after it
// dropped); "\0" (every key from `prefix` on) when there is no such byte.
std::string prefix_range_end(const std::string& prefix);

struct EtcdRangeOptions {
    int64_t revision = 0;  // 0: the latest
    int64_t limit = 0;     // 0: no limit
    bool keys_only = false;
};

class EtcdClient {
  public:
    // Throws std::invalid_argument for bad options (validate_etcd_options) or a client
    // certificate that cannot be loaded. Connects lazily: no member need be up yet.
    explicit EtcdClient(EtcdOptions options);
    ~EtcdClient();
    EtcdClient(const EtcdClient&) = delete;
    EtcdClient& operator=(const EtcdClient&) = delete;

    // The keys in [key, range_end), or `key` alone when range_end is empty.
    EtcdRangeResult range(const std::string& key, const std::string& range_end = {},
                          const EtcdRangeOptions& o = {});
    EtcdRangeResult range_prefix(const std::string& prefix, const EtcdRangeOptions& o = {}) {
        return range(prefix, prefix_range_end(prefix), o);
    }
    // The store's revision after the put. `lease` 0: none.
    int64_t put(const std::string& key, const std::string& value, int64_t lease = 0);
    EtcdDeleteResult delete_range(const std::string& key, const std::string& range_end = {});
    // Puts only if the key's mod_revision is `mod_revision` (0: the key does not exist), in
    // one transaction. Sent to another member only when the first could not be reached:
    // one that took it and timed out may have applied it (EtcdError Unavailable says so);
    // read the key to know.
    EtcdTxnResult put_if_mod_revision(const std::string& key, const std::string& value,
                                      int64_t mod_revision, int64_t lease = 0);

    // A new lease of `ttl_seconds` (etcd may grant more, never less).
    EtcdLease lease_grant(int64_t ttl_seconds);
    // Renews the lease once: its TTL after renewal, 0 when it has expired or is unknown.
    int64_t lease_keepalive_once(int64_t id);
    // Revokes the lease, deleting its keys; false if it had expired or was unknown.
    bool lease_revoke(int64_t id);

    // HTTP requests sent so far, every attempt at every member counted.
    uint64_t requests() const;

  private:
    std::unique_ptr<etcd::GatewayTransport> transport_;
};

}  // namespace nb
