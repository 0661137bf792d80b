nb_gtest(nb_control_tests
  ${CMAKE_CURRENT_LIST_DIR}/protocol_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/request_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/status_map_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trace_json_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trace_filter_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/control_socket_test.cpp)
target_link_libraries(nb_control_tests PRIVATE nb_control Threads::Threads)
