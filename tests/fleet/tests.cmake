nb_gtest(fleet_test ${CMAKE_CURRENT_LIST_DIR}/node_record_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/node_directory_test.cpp)
target_link_libraries(fleet_test PRIVATE nb_fleet)
# Registration and FleetSync against real etcd members (skips without etcd, fails under
# CI): records reach every directory, follow moves, expire; members down and back.
nb_gtest(fleet_store_test ${CMAKE_CURRENT_LIST_DIR}/fleet_store_test.cpp)
target_link_libraries(fleet_store_test PRIVATE nb_fleet)
