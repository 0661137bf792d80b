nb_gtest(activity_test ${CMAKE_CURRENT_LIST_DIR}/checksum_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gso_segment_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ring_record_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/packet_injector_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/udp_trigger_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/order_watch_test.cpp)
target_link_libraries(activity_test PRIVATE nb_activity)
