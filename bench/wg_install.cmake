add_executable(wg_install_bench ${CMAKE_CURRENT_LIST_DIR}/wg_install.cpp)
target_link_libraries(wg_install_bench PRIVATE nb_wg nb_net)
