if(TARGET nb_loader)
  add_executable(prog_cost_bench ${CMAKE_CURRENT_LIST_DIR}/prog_cost.cpp)
  target_link_libraries(prog_cost_bench PRIVATE nb_loader nb_net)
endif()
