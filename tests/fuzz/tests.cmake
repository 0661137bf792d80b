# libFuzzer targets (NB_FUZZ=ON, clang only): one per decoder of bytes from outside, in
# tests/fuzz/NAME.cpp, seeded from tests/fuzz/corpus/NAME/. Each is also the ctest test
# fuzz.NAME, a short run (NB_FUZZ_SECONDS) through scripts/fuzz.sh, which reads the corpus
# and writes what it finds under the build tree, never into the source tree. The long
# runs are `scripts/fuzz.sh TARGET|all`; docs/reliability.md has the figures.
if(NOT NB_FUZZ)
  return()
endif()

set(NB_FUZZ_SECONDS 5 CACHE STRING "Seconds each fuzz target runs as a ctest test")
# The targets always run under ASan and UBSan, NB_SANITIZE or not (repeating its flags
# is harmless): a fuzzer without them finds only crashes.
set(NB_FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all
                     -fno-omit-frame-pointer)
# Linked as built, without coverage: the loader needs the BPF skeletons and decodes
# nothing from outside.
set(NB_FUZZ_UNINSTRUMENTED nb_loader)
set(NB_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# nb_fuzz_instrumented(LIB): LIB's sources compiled again as LIB_fuzz with libFuzzer's
# coverage (-fsanitize=fuzzer-no-link), so the fuzzer sees the branches an input takes in
# the code under test; the nb_* libraries LIB links get the same treatment.
function(nb_fuzz_instrumented lib)
  if(TARGET ${lib}_fuzz)
    return()
  endif()
  get_target_property(srcs ${lib} SOURCES)
  get_target_property(deps ${lib} LINK_LIBRARIES)
  set(fuzz_deps)
  foreach(dep IN LISTS deps)
    if(dep MATCHES "^nb_" AND NOT dep IN_LIST NB_FUZZ_UNINSTRUMENTED)
      nb_fuzz_instrumented(${dep})
      list(APPEND fuzz_deps ${dep}_fuzz)
    elseif(dep)
      list(APPEND fuzz_deps ${dep})
    endif()
  endforeach()
  add_library(${lib}_fuzz STATIC ${srcs})
  target_include_directories(${lib}_fuzz PUBLIC ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
  target_compile_options(${lib}_fuzz PRIVATE -fsanitize=fuzzer-no-link ${NB_FUZZ_SANITIZE})
  target_link_libraries(${lib}_fuzz PUBLIC ${fuzz_deps})
endfunction()

# nb_fuzz_target(NAME LIBS...): the fuzzer fuzz_NAME from tests/fuzz/NAME.cpp, linked
# with the instrumented LIBS, and its ctest test fuzz.NAME.
function(nb_fuzz_target name)
  set(libs)
  foreach(lib IN LISTS ARGN)
    nb_fuzz_instrumented(${lib})
    list(APPEND libs ${lib}_fuzz)
  endforeach()
  add_executable(fuzz_${name} ${NB_FUZZ_DIR}/${name}.cpp)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${NB_FUZZ_SANITIZE})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${NB_FUZZ_SANITIZE})
  target_link_libraries(fuzz_${name} PRIVATE ${libs})
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                 ${CMAKE_BINARY_DIR}/tests/fuzz)
  add_test(NAME fuzz.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/fuzz.sh ${name} --time ${NB_FUZZ_SECONDS}
                   --build ${CMAKE_BINARY_DIR})
  # One fuzzer at a time: each keeps a core busy for its whole run, and the other tests
  # go on beside it on the other core.
  math(EXPR timeout "${NB_FUZZ_SECONDS} + 120")
  set_tests_properties(fuzz.${name} PROPERTIES RESOURCE_LOCK nb_fuzz TIMEOUT ${timeout})
endfunction()

# NAME (tests/fuzz/NAME.cpp, tests/fuzz/corpus/NAME/) and the agent libraries it fuzzes.
nb_fuzz_target(wg_quick_config nb_config)
nb_fuzz_target(uapi_get_reply nb_wg)
nb_fuzz_target(wg_netlink_replies nb_wg)
nb_fuzz_target(rtnl_replies nb_net)
nb_fuzz_target(ring_record nb_activity)
nb_fuzz_target(packet_summary nb_net)
nb_fuzz_target(control_request nb_control)
nb_fuzz_target(anonymizer_text nb_debug)
# The etcd gateway's replies; no etcd client without cpp-httplib (Debian 11).
if(TARGET nb_etcd)
  nb_fuzz_target(etcd_gateway_replies nb_etcd)
endif()
