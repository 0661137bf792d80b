// Where a lazy peer is: the domain's three states. The control protocol maps them to
// their wire names (agent/control/protocol.hpp); logs use the same names.
#pragma once

namespace nb {

enum class PeerState { Idle, Connecting, Connected };

}  // namespace nb
