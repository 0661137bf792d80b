#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "agent/wg/key.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

std::string key_problem(const std::string& key) {
    return WgKey::from_base64(key) ? std::string()
                                   : "not a WireGuard public key (44 base64 characters): " + key;
}

}  // namespace

PeerCommands add_peer_command(CLI::App& app, PeerArgs& a) {
    CLI::App* peer = app.add_subcommand("peer", "Act on peers");
    peer->require_subcommand(1);
    CLI::App* idle = peer->add_subcommand("idle", "Force a peer back to Idle");
    add_checked_argument(*idle, "KEY", a.public_key, "Peer public key (base64)", key_problem,
                         "KEY");
    add_socket_options(*idle, a.interface, a.run_dir);
    CLI::App* wake = peer->add_subcommand(
        "wake",
        "Connect peers now through their connectors, as if traffic had arrived (to pre-warm "
        "them before a planned burst); they go Idle again after the inactivity threshold");
    CLI::Option* keys =
        wake->add_option("KEY", a.wake_keys, "Peer public keys (base64)")
            ->check(CLI::Validator([](std::string& k) { return key_problem(k); }, "KEY"));
    CLI::Option* group =
        wake->add_option("--all-in-group", a.group, "Every peer of this group (Group = NAME)");
    keys->excludes(group);
    add_socket_options(*wake, a.interface, a.run_dir);
    return {idle, wake};
}

int run_peer_idle(const PeerArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    auto key = WgKey::from_base64(a.public_key);
    if (!key) throw UsageError("not a WireGuard public key: " + a.public_key);
    client.request(to_json(PeerIdleRequest{*key}));
    out << "peer " << a.public_key << " is now Idle\n";
    return 0;
}

int run_peer_wake(const PeerArgs& a, std::ostream& out) {
    PeerWakeRequest req;
    req.group = a.group;
    for (const auto& k : a.wake_keys) {
        auto key = WgKey::from_base64(k);
        if (!key) throw UsageError("not a WireGuard public key: " + k);
        req.public_keys.push_back(*key);
    }
    if (req.public_keys.empty() && !req.group)
        throw UsageError("peer wake: give peer keys or --all-in-group NAME");
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const nlohmann::json reply = client.request(to_json(ControlRequest{req}));
    const auto woken = reply.find("woken");
    if (woken == reply.end() || !woken->is_number_unsigned())
        throw std::runtime_error("invalid reply from nbagent (no woken)");
    const size_t asked = req.group ? 0 : req.public_keys.size();
    out << "waking " << woken->get<uint64_t>()
        << (woken->get<uint64_t>() == 1 ? " peer" : " peers");
    if (req.group) out << " of group " << *req.group;
    if (asked > woken->get<uint64_t>())
        out << " (" << asked - woken->get<uint64_t>() << " already connecting or connected)";
    out << "; `nbagent status --state connected` shows them once their handshake completes\n";
    return 0;
}

}  // namespace nb::cli
