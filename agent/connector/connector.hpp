// Connectors find the endpoint of a peer that is waking up. They block (DNS, a child
// process) and so run on ConnectPool's worker threads, never on the event loop.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "agent/wg/key.hpp"
#include "base/enum_names.hpp"
#include "base/net/ip.hpp"

namespace nb {

class NodeDirectory;

struct ConnectRequest {
    WgKey peer;
    std::string interface;
    std::optional<std::string> configured_endpoint;  // Endpoint= from the config, verbatim
    // Set by ConnectPool: when stop is requested (agent shutting down), a connector
    // abandons its work early. Connectors that cannot be interrupted (DNS) finish normally.
    std::stop_token stop;
};

struct ConnectResult {
    std::optional<SockAddr> endpoint;
    std::string error;  // non-empty exactly when endpoint is empty
};

class Connector {
  public:
    virtual ~Connector() = default;
    virtual std::string name() const = 0;
    // Blocking; called on a worker thread, possibly concurrently for different peers.
    virtual ConnectResult connect(const ConnectRequest& req) = 0;
};

// Turns "host:port" / "[v6]:port" into an endpoint: numeric addresses directly,
// hostnames through getaddrinfo (UDP, first result). The error names the host.
ConnectResult resolve_endpoint(std::string_view host_port);

// Uses the peer's configured Endpoint, resolving hostnames at wake time.
std::unique_ptr<Connector> make_static_connector();

// Runs `/bin/sh -c command` in its own process group with NB_PEER_PUBLIC_KEY (base64),
// NB_INTERFACE and NB_CONFIGURED_ENDPOINT (when configured) in its environment. The
// first non-empty line of its stdout is the endpoint ("host:port"). The whole process
// group is killed when the command ends, times out or the request is stopped, so a
// connector that wants to leave something running must detach it (setsid).
std::unique_ptr<Connector> make_exec_connector(std::string command,
                                               std::chrono::milliseconds timeout);

// Endpoints from a fleet's directory (agent/fleet), kept current by a watch on the store
// (etcd): no wake waits on the store. Falls back to the configured Endpoint.
std::unique_ptr<Connector> make_fleet_connector(std::shared_ptr<const NodeDirectory> directory);

// A peer's Connector (wg-quick key): `static`, its configured Endpoint; `exec:COMMAND`,
// what a command prints; `etcd`, what the fleet's nodes publish in the store.
enum class ConnectorKind { Static, Exec, Etcd };
inline constexpr EnumName<ConnectorKind> kConnectorKindNames[] = {
    {ConnectorKind::Static, "static"},
    {ConnectorKind::Exec, "exec"},
    {ConnectorKind::Etcd, "etcd"},
};
constexpr const auto& enum_names(ConnectorKind) {
    return kConnectorKindNames;
}
struct ConnectorSpec {
    ConnectorKind kind = ConnectorKind::Static;
    std::string command;  // exec: the text after "exec:", not blank
};
// The one parser of a Connector value; none for an unknown kind or a blank command.
std::optional<ConnectorSpec> parse_connector_spec(std::string_view text);
// "static, exec:<command> or etcd": the kinds from the table, as a Connector value spells them.
std::string connector_spellings();

// What connectors beyond static and exec need from the agent.
struct ConnectorContext {
    std::chrono::milliseconds exec_timeout{5000};
    std::shared_ptr<const NodeDirectory> fleet;  // none: no store configured
};

// spec: absent or "static" -> static; "exec:<command>" -> exec with exec_timeout; "etcd"
// -> the fleet's directory. Throws std::invalid_argument naming the spec otherwise, or
// when "etcd" is asked for without a store.
std::unique_ptr<Connector> make_connector(const std::optional<std::string>& spec,
                                          const ConnectorContext& context);

}  // namespace nb
