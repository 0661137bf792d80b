nb_gtest(connector_test ${CMAKE_CURRENT_LIST_DIR}/connector_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/connect_pool_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fleet_connector_test.cpp)
target_link_libraries(connector_test PRIVATE nb_connector)
