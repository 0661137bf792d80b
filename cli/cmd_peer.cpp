#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "agent/wg/key.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

CLI::App* add_peer_command(CLI::App& app, PeerArgs& a) {
    CLI::App* idle =
        add_grouped_command(app, "peer", "Act on one peer", "idle", "Force a peer back to Idle");
    add_checked_argument(
        *idle, "KEY", a.public_key, "Peer public key (base64)",
        [](const std::string& key) {
            return WgKey::from_base64(key)
                       ? std::string()
                       : "not a WireGuard public key (44 base64 characters): " + key;
        },
        "KEY");
    add_socket_options(*idle, a.interface, a.run_dir);
    return idle;
}

int run_peer_idle(const PeerArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    auto key = WgKey::from_base64(a.public_key);
    if (!key) throw UsageError("not a WireGuard public key: " + a.public_key);
    client.request(to_json(PeerIdleRequest{*key}));
    out << "peer " << a.public_key << " is now Idle\n";
    return 0;
}

}  // namespace nb::cli
