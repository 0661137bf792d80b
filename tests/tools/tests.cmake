# Test tools (executables, not gtests) that the integration scripts drive.
add_executable(nbtraffic ${CMAKE_CURRENT_LIST_DIR}/nbtraffic.cpp)

# A foreign tc filter for the coexistence test (built with the same clang as bpf/).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o
  COMMAND ${BPF_CLANG} -g -O2 -target bpf -Wall -Werror -I${NB_BPF_ARCH_INCLUDE}
          -c ${CMAKE_CURRENT_LIST_DIR}/tc_pass.bpf.c -o ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/tc_pass.bpf.c
  VERBATIM)
add_custom_target(tc_pass_bpf ALL DEPENDS ${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o)
