# WireGuard generic netlink: encoding/decoding without a kernel (unprivileged).
nb_gtest(netlink_codec_test ${CMAKE_CURRENT_LIST_DIR}/netlink_codec_test.cpp)
target_link_libraries(netlink_codec_test PRIVATE nb_wg nb_net)

# Real kernel WireGuard in private network namespaces (root). Skips where the kernel has
# no WireGuard module (this host); the qemu kernel matrix runs it.
nb_gtest(netlink_kernel_test ${CMAKE_CURRENT_LIST_DIR}/netlink_kernel_test.cpp)
target_link_libraries(netlink_kernel_test PRIVATE nb_wg nb_net)
