nb_gtest(wg_quick_test ${CMAKE_CURRENT_LIST_DIR}/wg_quick_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_file_test.cpp)
target_link_libraries(wg_quick_test PRIVATE nb_config nb_wg nb_net)
