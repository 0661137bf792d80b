nb_gtest(ip_key_test ${CMAKE_CURRENT_LIST_DIR}/ip_key_test.cpp)
target_link_libraries(ip_key_test PRIVATE nb_net nb_wg)
