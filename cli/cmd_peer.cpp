#include "agent/control/control_client.hpp"
#include "agent/wg/key.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

CLI::App* add_peer_command(CLI::App& app, PeerArgs& a) {
    CLI::App* peer = app.add_subcommand("peer", "Act on one peer");
    peer->require_subcommand(1);
    CLI::App* idle = peer->add_subcommand("idle", "Force a peer back to Idle");
    idle->add_option("KEY", a.public_key, "Peer public key (base64)")
        ->required()
        ->check(CLI::Validator(
            [](std::string& key) -> std::string {
                return WgKey::from_base64(key)
                           ? std::string()
                           : "not a WireGuard public key (44 base64 characters): " + key;
            },
            "KEY"));
    idle->add_option("-i,--interface", a.interface, "Interface (needed if several agents run)");
    idle->add_option("--run-dir", a.run_dir, "Directory of the control socket")
        ->capture_default_str();
    return idle;
}

int run_peer_idle(const PeerArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    client.request({{"cmd", "peer_idle"}, {"public_key", a.public_key}});
    out << "peer " << a.public_key << " is now Idle\n";
    return 0;
}

}  // namespace nb::cli
