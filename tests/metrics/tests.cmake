if(TARGET nb_metrics)
  nb_gtest(metrics_test ${CMAKE_CURRENT_LIST_DIR}/prometheus_text_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/metrics_server_test.cpp)
  target_link_libraries(metrics_test PRIVATE nb_metrics Threads::Threads)
  if(TARGET PkgConfig::CPP_HTTPLIB)
    target_link_libraries(metrics_test PRIVATE PkgConfig::CPP_HTTPLIB)
    target_compile_definitions(metrics_test PRIVATE NB_HAVE_HTTPLIB)
  endif()
endif()
