add_executable(status_standin ${CMAKE_CURRENT_LIST_DIR}/status_standin.cpp)
target_link_libraries(status_standin PRIVATE nb_engine nlohmann_json::nlohmann_json)
