// Where a lazy peer is: the domain's three states, and their names for logs. The
// control protocol maps them to its wire names (agent/control/protocol.hpp).
#pragma once

namespace nb {

enum class PeerState { Idle, Connecting, Connected };

inline const char* state_name(PeerState s) {
    static constexpr const char* kNames[] = {"Idle", "Connecting", "Connected"};
    const auto i = static_cast<unsigned>(s);
    return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "Idle";
}

}  // namespace nb
