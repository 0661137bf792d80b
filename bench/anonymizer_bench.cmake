add_executable(anonymizer_bench ${CMAKE_CURRENT_LIST_DIR}/anonymizer_bench.cpp)
target_link_libraries(anonymizer_bench PRIVATE nb_debug nb_control nb_wg nb_net)
