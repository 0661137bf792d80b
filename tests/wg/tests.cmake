# UAPI protocol against canned replies on a real UNIX socket (unprivileged).
nb_gtest(uapi_protocol_test ${CMAKE_CURRENT_LIST_DIR}/uapi_protocol_test.cpp)
target_link_libraries(uapi_protocol_test PRIVATE nb_wg nb_net)

# Real wireguard-go in private network namespaces (root; skip otherwise).
nb_gtest(wireguard_go_test ${CMAKE_CURRENT_LIST_DIR}/wireguard_go_test.cpp)
target_link_libraries(wireguard_go_test PRIVATE nb_wg nb_net)
# WgHealth against a stand-in daemon on a UNIX socket, watching "lo" (unprivileged).
nb_gtest(wg_health_test ${CMAKE_CURRENT_LIST_DIR}/wg_health_test.cpp)
target_link_libraries(wg_health_test PRIVATE nb_wg nb_net)
# DeviceReader's thread hand-over (unprivileged).
nb_gtest(device_reader_test ${CMAKE_CURRENT_LIST_DIR}/device_reader_test.cpp)
target_link_libraries(device_reader_test PRIVATE nb_wg)

# WireGuard generic netlink: encoding/decoding without a kernel (unprivileged).
nb_gtest(netlink_codec_test ${CMAKE_CURRENT_LIST_DIR}/netlink_codec_test.cpp)
target_link_libraries(netlink_codec_test PRIVATE nb_wg nb_net)

# Real kernel WireGuard in private network namespaces (root). Skips where the kernel has
# no WireGuard module (this host); the qemu kernel matrix runs it.
nb_gtest(netlink_kernel_test ${CMAKE_CURRENT_LIST_DIR}/netlink_kernel_test.cpp)
target_link_libraries(netlink_kernel_test PRIVATE nb_wg nb_net)
