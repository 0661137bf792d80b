// Where a lazy peer is: the domain's three states, and their names for logs. The
// control protocol maps them to its wire names (agent/control/protocol.hpp).
#pragma once

#include "base/enum_names.hpp"

namespace nb {

enum class PeerState { Idle, Connecting, Connected };

inline constexpr EnumName<PeerState> kPeerStateNames[] = {
    {PeerState::Idle, "Idle"},
    {PeerState::Connecting, "Connecting"},
    {PeerState::Connected, "Connected"},
};

inline const char* state_name(PeerState s) {
    return name_of(kPeerStateNames, s, "Idle");
}

}  // namespace nb
