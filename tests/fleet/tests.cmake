nb_gtest(fleet_test ${CMAKE_CURRENT_LIST_DIR}/node_record_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/node_directory_test.cpp)
target_link_libraries(fleet_test PRIVATE nb_fleet)
