#include "agent/fleet/registration.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace nb {

struct Registration::Impl {
    EtcdClient& client;
    RegistrationOptions opts;
    std::string key;
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> writes{0};
    std::atomic<int64_t> lease{0};
    std::mutex mu;
    std::condition_variable cv;
    std::thread thread;
    std::optional<std::string> written;  // the value last put under the current lease
    std::vector<std::string> endpoints;  // as last published
    std::string last_problem;

    void tell(const std::string& problem) {
        if (problem == last_problem) return;
        last_problem = problem;
        if (opts.problem) opts.problem(problem);
    }

    void publish(const std::string& value) {
        client.put(key, value, lease);
        written = value;
        ++writes;
    }

    // One round: a lease if there is none, the record if it changed, else a keepalive.
    void round() {
        const NodeRecord rec = opts.self();
        std::string value = encode_node(rec);
        // A move is published before the keepalive: that may wait on a dead connection.
        if (lease && written && rec.endpoints != endpoints) publish(value);
        if (lease) {
            // 0: the lease expired while the store could not be reached; start again.
            if (client.lease_keepalive_once(lease) <= 0) {
                lease = 0;
                written.reset();
            }
        }
        if (!lease) {
            lease = client.lease_grant(opts.ttl.count()).id;
            written.reset();
        }
        if (written != value) publish(value);
        const bool moved = !endpoints.empty() && rec.endpoints != endpoints;
        endpoints = rec.endpoints;
        tell("");
        if (moved && opts.moved) opts.moved();
    }

    void run() {
        const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(opts.ttl) / 3;
        auto wait = every;
        while (!stopping) {
            try {
                round();
                wait = every;
            } catch (const EtcdError& e) {
                tell(std::string("registering ") + key + ": " + e.what());
                // Sooner than a keepalive, so the entry is back before the others notice.
                wait = std::max(std::chrono::milliseconds(200), every / 4);
            }
            std::unique_lock lock(mu);
            cv.wait_for(lock, wait, [&] { return stopping.load(); });
        }
    }
};

Registration::Registration(EtcdClient& client, RegistrationOptions options)
    : impl_(new Impl{client, std::move(options)}) {
    if (!impl_->opts.self) throw std::invalid_argument("registration needs the node's record");
    if (impl_->opts.ttl < std::chrono::seconds(2))
        throw std::invalid_argument("the registration lease must be at least 2 s");
    check_mesh_name(impl_->opts.mesh);
    impl_->key = node_key(impl_->opts.mesh, impl_->opts.self().public_key);
    impl_->thread = std::thread([this] { impl_->run(); });
}

Registration::~Registration() {
    stop();
}

void Registration::stop() {
    if (!impl_ || impl_->stopping.exchange(true)) return;
    {
        std::lock_guard lock(impl_->mu);
        impl_->cv.notify_all();
    }
    if (impl_->thread.joinable()) impl_->thread.join();
    if (int64_t id = impl_->lease.exchange(0)) {
        try {
            impl_->client.lease_revoke(id);
        } catch (const EtcdError&) {
            // The store is away: the lease expires on its own within the TTL.
        }
    }
}

uint64_t Registration::writes() const {
    return impl_->writes;
}
int64_t Registration::lease() const {
    return impl_->lease;
}

}  // namespace nb
