# agent/debug/: what the agent tells about itself for debug bundles.
nb_gtest(anonymizer_test ${CMAKE_CURRENT_LIST_DIR}/anonymizer_test.cpp)
target_link_libraries(anonymizer_test PRIVATE nb_debug nlohmann_json::nlohmann_json)
