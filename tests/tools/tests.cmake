# Test tools (executables, not gtests) that the integration scripts drive.
add_executable(nbtraffic ${CMAKE_CURRENT_LIST_DIR}/nbtraffic.cpp)
