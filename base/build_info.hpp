// What this binary is: its version and how it was built. The definition is generated at
// build time (cmake/BuildInfoGen.cmake) into the library nb_build_info, which whoever
// calls build_info() links.
#pragma once

#include <string_view>

namespace nb {

struct BuildInfo {
    // `git describe --tags --dirty` ("1.2.0-3-gabc1234-dirty"); "0.1.0-gabc1234" before the
    // first tag; the project() version (CMakeLists.txt) when built without git.
    std::string_view version;
    std::string_view build_type;  // CMAKE_BUILD_TYPE: "RelWithDebInfo", "Release"...
    std::string_view compiler;    // CMake's compiler id and version: "GNU 12.2.0"
};

const BuildInfo& build_info();

}  // namespace nb
