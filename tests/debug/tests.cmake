# Thread stacks of this test process (unprivileged). ENABLE_EXPORTS (-rdynamic) puts the
# test's own functions in the dynamic symbol table, as cli/ does for nbagent, so dladdr
# names them.
nb_gtest(thread_stacks_test ${CMAKE_CURRENT_LIST_DIR}/thread_stacks_test.cpp)
target_link_libraries(thread_stacks_test PRIVATE nb_debug)
set_target_properties(thread_stacks_test PROPERTIES ENABLE_EXPORTS ON)

# CPU profile read back with google-pprof (skips without it, fails so under CI=true).
nb_gtest(cpu_profile_test ${CMAKE_CURRENT_LIST_DIR}/cpu_profile_test.cpp)
target_link_libraries(cpu_profile_test PRIVATE nb_debug)

# Resource use from /proc, glibc's allocation accounting, the slab filter (unprivileged).
nb_gtest(resources_test ${CMAKE_CURRENT_LIST_DIR}/resources_test.cpp)
target_link_libraries(resources_test PRIVATE nb_debug)

# agent/debug/: what the agent tells about itself for debug bundles.
nb_gtest(anonymizer_test ${CMAKE_CURRENT_LIST_DIR}/anonymizer_test.cpp)
target_link_libraries(anonymizer_test PRIVATE nb_debug nlohmann_json::nlohmann_json)
