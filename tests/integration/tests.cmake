# Integration tests: each tests/integration/*.sh (except lib.sh) runs as root against
# network namespaces built by scripts/lab.sh. They skip (77) with a printed reason where
# that is impossible; CI=true or NB_REQUIRE_PRIVILEGED=1 turns the skip into a failure.
file(GLOB NB_INTEGRATION_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.sh)
list(REMOVE_ITEM NB_INTEGRATION_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/lib.sh)
set(NB_INTEGRATION_ENV NBTRAFFIC=$<TARGET_FILE:nbtraffic> NB_NO_BPF=$<TARGET_FILE:no_bpf> NB_TC_PASS_OBJ=${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o)
# Tests that measure memory learn that ASan owns the heap (clang links it statically,
# so ldd cannot tell).
if(NB_SANITIZE)
  list(APPEND NB_INTEGRATION_ENV NB_SANITIZED=1)
endif()
# A foreign tcx program for the ordering test (tests/tools: built with the loader).
if(TARGET nb_loader)
  list(APPEND NB_INTEGRATION_ENV NB_TCX_HOLD=$<TARGET_FILE:tcx_hold>)
endif()
# Before the agent exists the tests that need it skip, so configuring must not need it.
if(TARGET nbagent)
  list(APPEND NB_INTEGRATION_ENV NBAGENT=$<TARGET_FILE:nbagent>)
endif()
# Lab tests run beside each other and beside the unit tests (ctest -j): lab names carry
# the test's pid, so two labs never collide. Tests that mostly wait out a timer take a
# lock, so that both never fill ctest's slots while the CPU idles (groups waits out
# 20 s inactivity thresholds). Tests that count BPF objects host-wide run alone (tcx
# links: bpftool 7.1 cannot tell their device, so another agent's links would count).
# A first run has no timings (CTestCostData.txt), so COST starts the labs, which take
# seconds to a minute, before the unit tests, which then fill the gaps.
set(NB_INTEGRATION_WAITERS groups stale_sessions peer_wake)
set(NB_INTEGRATION_ALONE crash_recovery eager_mode)
foreach(script ${NB_INTEGRATION_SCRIPTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME integration.${name} COMMAND bash ${script})
  set_tests_properties(integration.${name} PROPERTIES
    ENVIRONMENT "${NB_INTEGRATION_ENV}"
    SKIP_RETURN_CODE 77
    TIMEOUT 300
    COST 10)
  if(name IN_LIST NB_INTEGRATION_ALONE)
    set_tests_properties(integration.${name} PROPERTIES RUN_SERIAL TRUE)
  elseif(name IN_LIST NB_INTEGRATION_WAITERS)
    set_tests_properties(integration.${name} PROPERTIES RESOURCE_LOCK nb_lab_waiter COST 40)
  endif()
endforeach()
