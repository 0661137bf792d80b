// Maps the domain's reports into the status reply's types (agent/control/protocol.hpp):
// the lazy manager's counts, and the order check of our tc programs.
#pragma once

#include "agent/control/protocol.hpp"
#include "agent/lazy/peer_status.hpp"
#include "loader/tc_order.hpp"

namespace nb {

// The reply's manager part (everything but the engine's fields and the peers).
AgentStatus agent_status(const std::string& interface, LazyStatus lazy);
DatapathOrderStatus order_status(const TcOrder& order);

}  // namespace nb
