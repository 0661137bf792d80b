if(TARGET nb_lazy)
  nb_gtest(lazy_manager_test ${CMAKE_CURRENT_LIST_DIR}/lazy_manager_test.cpp)
  target_link_libraries(lazy_manager_test PRIVATE nb_lazy nb_connector nb_activity nb_control nb_wg nb_net)
endif()
