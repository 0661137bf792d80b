# The engine's own parts that need no lab: the instance lock.
nb_gtest(instance_lock_test ${CMAKE_CURRENT_LIST_DIR}/instance_lock_test.cpp)
target_link_libraries(instance_lock_test PRIVATE nb_engine)
