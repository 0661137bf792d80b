nb_gtest(printable_test ${CMAKE_CURRENT_LIST_DIR}/printable_test.cpp)
target_include_directories(printable_test PRIVATE ${CMAKE_SOURCE_DIR})
