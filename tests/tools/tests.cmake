# Test tools (executables, not gtests) that the integration scripts drive.
add_executable(nbtraffic ${CMAKE_CURRENT_LIST_DIR}/nbtraffic.cpp)
# A kernel without BPF, for the UDP fallback tests: bpf() fails with ENOSYS under it.
find_library(NB_SECCOMP_LIB seccomp REQUIRED)
add_executable(no_bpf ${CMAKE_CURRENT_LIST_DIR}/no_bpf.cpp)
target_link_libraries(no_bpf PRIVATE ${NB_SECCOMP_LIB})

# A foreign tc filter for the coexistence test (built with the same clang as bpf/).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o
  COMMAND ${BPF_CLANG} -g -O2 -target bpf ${NB_BPF_WARNINGS} -I${NB_BPF_ARCH_INCLUDE}
          -c ${CMAKE_CURRENT_LIST_DIR}/tc_pass.bpf.c -o ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/tc_pass.bpf.c
  VERBATIM)
add_custom_target(tc_pass_bpf ALL DEPENDS ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o)
# Another tcx user of the device, first or last in the chain (bpftool 7.1 has no tcx).
if(TARGET nb_loader)
  add_executable(tcx_hold ${CMAKE_CURRENT_LIST_DIR}/tcx_hold.cpp)
  target_link_libraries(tcx_hold PRIVATE nb_loader)
  target_include_directories(tcx_hold PRIVATE ${CMAKE_SOURCE_DIR})
endif()
