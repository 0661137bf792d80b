// This agent's own node record in the store, bound to a lease so that a dead agent's
// entry expires on its own. The lease's keepalive is the heartbeat: no value is written
// again unless the record changed (a new underlay address), because every write reaches
// every agent's watch. A clean stop revokes the lease: the others drop the node at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/etcd/etcd_client.hpp"
#include "agent/fleet/node_record.hpp"

namespace nb {

struct RegistrationOptions {
    std::string mesh;
    // The lease: the entry outlives a dead agent by at most this; a keepalive goes out
    // every third of it.
    std::chrono::seconds ttl{10};
    // The record as it is now, asked again at every keepalive (endpoints follow the
    // underlay). Called on the registration's thread.
    std::function<NodeRecord()> self;
    // Each failure and recovery, for the log and status ("" once registered again).
    std::function<void(const std::string& problem)> problem;
    // The record's endpoints changed (this host moved): after the new record is written,
    // on the registration's thread. Connections bound to the old address are dead now.
    std::function<void()> moved;
};

class Registration {
  public:
    // Starts at once on a thread of its own; `client` must outlive this.
    Registration(EtcdClient& client, RegistrationOptions options);
    ~Registration();  // stop()
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

    // Revokes the lease (one try) and ends the thread.
    void stop();
    // Records written: the first, and one per change of the record or of the lease.
    uint64_t writes() const;
    int64_t lease() const;  // 0 while not registered

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nb
