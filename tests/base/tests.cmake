nb_gtest(printable_test ${CMAKE_CURRENT_LIST_DIR}/printable_test.cpp)
target_include_directories(printable_test PRIVATE ${CMAKE_SOURCE_DIR})
nb_gtest(enum_names_test ${CMAKE_CURRENT_LIST_DIR}/enum_names_test.cpp)
target_include_directories(enum_names_test PRIVATE ${CMAKE_SOURCE_DIR})
