#include "agent/connector/connector.hpp"
#include "agent/fleet/node_directory.hpp"

namespace nb {

namespace {

// Answers from the directory a watch keeps current: a lookup under a shared lock, never
// a round trip to the store. Where the directory has no endpoint for the peer (not
// registered, or the store never answered since the start) the configured Endpoint is
// the fallback, as the static connector would dial it.
class FleetConnector final : public Connector {
  public:
    explicit FleetConnector(std::shared_ptr<const NodeDirectory> dir) : dir_(std::move(dir)) {}

    std::string name() const override { return to_string(ConnectorKind::Etcd); }

    ConnectResult connect(const ConnectRequest& req) override {
        std::vector<std::string> endpoints = dir_->endpoints_of(req.peer);
        std::string last_error;
        for (const std::string& e : endpoints) {
            ConnectResult r = resolve_endpoint(e);
            if (r.endpoint) return r;
            last_error = "published endpoint: " + r.error;
        }
        if (req.configured_endpoint) return resolve_endpoint(*req.configured_endpoint);
        if (!last_error.empty()) return {std::nullopt, last_error};
        return {std::nullopt, "no endpoint: not registered under " + dir_->prefix() +
                                  " and no Endpoint configured"};
    }

  private:
    std::shared_ptr<const NodeDirectory> dir_;
};

}  // namespace

std::unique_ptr<Connector> make_fleet_connector(std::shared_ptr<const NodeDirectory> directory) {
    return std::make_unique<FleetConnector>(std::move(directory));
}

}  // namespace nb
