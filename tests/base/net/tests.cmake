nb_gtest(ip_key_test ${CMAKE_CURRENT_LIST_DIR}/ip_key_test.cpp)
target_link_libraries(ip_key_test PRIVATE nb_net nb_wg)
# rtnetlink replies decoded without a kernel (unprivileged; rtnl_test has the kernel's own).
nb_gtest(rtnl_reply_test ${CMAKE_CURRENT_LIST_DIR}/rtnl_reply_test.cpp)
target_link_libraries(rtnl_reply_test PRIVATE nb_net)
# rtnetlink against the kernel in private network namespaces (root; skip otherwise).
nb_gtest(rtnl_test ${CMAKE_CURRENT_LIST_DIR}/rtnl_test.cpp)
target_link_libraries(rtnl_test PRIVATE nb_net nlohmann_json::nlohmann_json)
nb_gtest(packet_summary_test ${CMAKE_CURRENT_LIST_DIR}/packet_summary_test.cpp)
target_link_libraries(packet_summary_test PRIVATE nb_net)
