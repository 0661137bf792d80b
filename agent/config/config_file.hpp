// Reading a config file whose path someone else named (a command line, a control
// client, SIGHUP). Only regular files, and only up to a size: `nbagent apply -c /dev/zero`
// or a FIFO must get an error at once, never a reader that blocks or grows without end.
#pragma once

#include <cstddef>
#include <string>

namespace nb {

// A million peers at ~200 bytes each, with room to spare.
inline constexpr size_t kMaxConfigBytes = 256u * 1024 * 1024;

// The whole file. Throws ConfigError ("PATH: problem") when it is not a regular file,
// is larger than `max_bytes`, or cannot be read.
std::string read_config_file(const std::string& path, size_t max_bytes = kMaxConfigBytes);

}  // namespace nb
