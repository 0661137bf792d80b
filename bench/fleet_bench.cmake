add_executable(fleet_bench ${CMAKE_CURRENT_LIST_DIR}/fleet_bench.cpp)
target_link_libraries(fleet_bench PRIVATE nb_connector nb_fleet nb_wg nb_net)
add_executable(fleet_load ${CMAKE_CURRENT_LIST_DIR}/fleet_load.cpp)
target_link_libraries(fleet_load PRIVATE nb_fleet nb_etcd nb_wg nb_net)
