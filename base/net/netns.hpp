// Which network namespace this process is in. Namespaces share /run (`ip netns exec`
// keeps it), so a path that must be one per namespace names it.
#pragma once

#include <optional>
#include <string>

namespace nb {

// "net-4026531840": the namespace's inode, unique while it exists. Throws
// std::runtime_error when /proc/self/ns/net cannot be read.
std::string netns_id();

// The name `ip netns` gave it ("blue": a bind mount at /run/netns/blue), as
// `ip netns identify` finds it; none for the initial namespace or an unnamed one.
std::optional<std::string> netns_name(const std::string& netns_dir = "/run/netns");

}  // namespace nb
