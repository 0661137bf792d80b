if(TARGET nb_etcd)
  # The gateway's JSON, endpoints and options; failover and watch streams against an
  # in-process stand-in (cpp-httplib's server): malformed replies, errors, split lines.
  nb_gtest(etcd_gateway_test ${CMAKE_CURRENT_LIST_DIR}/gateway_json_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/fake_gateway_test.cpp)
  target_link_libraries(etcd_gateway_test PRIVATE nb_etcd PkgConfig::CPP_HTTPLIB)
  # Real etcd members (Debian's etcd-server) on loopback: keys, leases, watches, failover
  # between members, TLS with client certificates. Skips without etcd (fails under CI).
  nb_gtest(etcd_client_test ${CMAKE_CURRENT_LIST_DIR}/etcd_client_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/etcd_watch_test.cpp ${CMAKE_CURRENT_LIST_DIR}/etcd_tls_test.cpp)
  target_link_libraries(etcd_client_test PRIVATE nb_etcd)
endif()
