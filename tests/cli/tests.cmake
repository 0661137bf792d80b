# The nbagent commands: against a stand-in control server, and their text output.
nb_gtest(nb_cli_tests ${CMAKE_CURRENT_LIST_DIR}/cli_test.cpp ${CMAKE_CURRENT_LIST_DIR}/version_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/run_settings_test.cpp ${CMAKE_CURRENT_LIST_DIR}/run_options_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mode_names_test.cpp)
target_link_libraries(nb_cli_tests PRIVATE nb_cli nb_control Threads::Threads)
nb_gtest(nb_status_format_tests ${CMAKE_CURRENT_LIST_DIR}/status_format_test.cpp)
target_link_libraries(nb_status_format_tests PRIVATE nb_cli nb_control)
nb_gtest(bundle_files_test ${CMAKE_CURRENT_LIST_DIR}/bundle_files_test.cpp)
target_link_libraries(bundle_files_test PRIVATE nb_cli)
