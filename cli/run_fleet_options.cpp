// run's options for a fleet on etcd (docs/fleet.md): where the store is and how to reach
// it, which mesh this node joins, what it publishes, and whether the peers come from it.
#include "agent/etcd/etcd_options.hpp"
#include "agent/fleet/node_record.hpp"
#include "base/net/ip.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

CLI::Validator etcd_url_validator() {
    return throwing_validator<std::invalid_argument>(
        [](const std::string& text) { parse_etcd_endpoint(text); }, "URL");
}

CLI::Validator mesh_validator() {
    return throwing_validator<NodeRecordError>(
        [](const std::string& text) { check_mesh_name(text); }, "NAME");
}

CLI::Validator host_port_validator() {
    return throwing_validator<std::invalid_argument>(
        [](const std::string& text) {
            std::string host;
            uint16_t port = 0;
            if (!split_host_port(text, host, port))
                throw std::invalid_argument("expected host:port, got \"" + text + "\"");
        },
        "HOST:PORT");
}

}  // namespace

void add_fleet_options(CLI::App& run, RunArgs& a) {
    run.add_option("--etcd-endpoints", a.etcd_endpoints,
                   "etcd members' client URLs (http:// or https://), comma-separated: "
                   "register this node and watch the mesh's (docs/fleet.md)")
        ->delimiter(',')
        ->check(etcd_url_validator());
    run.add_option("--etcd-ca", a.etcd_ca, "CA certificate to verify the etcd members with")
        ->check(CLI::ExistingFile);
    run.add_option("--etcd-cert", a.etcd_cert, "Client certificate for etcd (with --etcd-key)")
        ->check(CLI::ExistingFile);
    run.add_option("--etcd-key", a.etcd_key, "Client certificate's key for etcd")
        ->check(CLI::ExistingFile);
    run.add_option("--mesh", a.mesh,
                   "The mesh this node joins: its nodes live under /nbagent/MESH/")
        ->check(mesh_validator())
        ->capture_default_str();
    run.add_option("--map", a.map,
                   "Where the peers come from: file (the config's), or etcd (the config's and "
                   "every node of the mesh)")
        ->check(enum_validator<MapSource>())
        ->capture_default_str();
    run.add_option("--advertise", a.advertise,
                   "Endpoints the others dial, comma-separated host:port (default: this "
                   "host's addresses with the listen port, followed as they change)")
        ->delimiter(',')
        ->check(host_port_validator());
    run.add_option("--etcd-lease-ttl", a.lease_ttl,
                   "How long this node's entry outlives it when it dies without a word "
                   "(a keepalive goes every third of it)")
        ->check(duration_validator())
        ->capture_default_str();
    run.add_option("--node-groups", a.node_groups,
                   "Groups the others put this node in, comma-separated (wake and idle together)")
        ->delimiter(',');
    run.add_option("--node-lazy", a.node_lazy,
                   "off: the others keep this node connected (a hub), as Lazy = off would")
        ->check(switch_validator())
        ->capture_default_str();
}

FleetOptions to_fleet_options(const RunArgs& a) {
    FleetOptions f;
    f.etcd_endpoints = a.etcd_endpoints;
    f.etcd_ca = a.etcd_ca;
    f.etcd_cert = a.etcd_cert;
    f.etcd_key = a.etcd_key;
    f.mesh = a.mesh;
    f.map = parse_option<MapSource>("--map", a.map);
    f.advertise = a.advertise;
    f.lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(parse_duration(a.lease_ttl));
    if (f.lease_ttl < std::chrono::seconds(2))
        throw UsageError("--etcd-lease-ttl: at least 2s, got \"" + a.lease_ttl + "\"");
    f.groups = a.node_groups;
    f.lazy = parse_switch(a.node_lazy).value_or(true);
    if (f.map == MapSource::Etcd && f.etcd_endpoints.empty())
        throw UsageError("--map etcd needs --etcd-endpoints");
    if (f.etcd_cert.empty() != f.etcd_key.empty())
        throw UsageError("--etcd-cert and --etcd-key go together");
    return f;
}

}  // namespace nb::cli
