add_executable(lifecycle_bench ${CMAKE_CURRENT_LIST_DIR}/lifecycle_bench.cpp)
target_link_libraries(lifecycle_bench PRIVATE nb_lazy nb_activity nb_connector nb_control nb_wg
  nb_loader nb_net spdlog::spdlog)
