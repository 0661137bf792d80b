# Integration tests: each tests/integration/*.sh (except lib.sh) runs as root against
# network namespaces built by scripts/lab.sh. They skip (77) with a printed reason where
# that is impossible; CI=true or NB_REQUIRE_PRIVILEGED=1 turns the skip into a failure.
file(GLOB NB_INTEGRATION_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.sh)
list(REMOVE_ITEM NB_INTEGRATION_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/lib.sh)
set(NB_INTEGRATION_ENV NBTRAFFIC=$<TARGET_FILE:nbtraffic> NB_NO_BPF=$<TARGET_FILE:no_bpf> NB_TC_PASS_OBJ=${CMAKE_BINARY_DIR}/tests/tc_pass.bpf.o)
# Before the agent exists the tests that need it skip, so configuring must not need it.
if(TARGET nbagent)
  list(APPEND NB_INTEGRATION_ENV NBAGENT=$<TARGET_FILE:nbagent>)
endif()
foreach(script ${NB_INTEGRATION_SCRIPTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME integration.${name} COMMAND bash ${script})
  set_tests_properties(integration.${name} PROPERTIES
    ENVIRONMENT "${NB_INTEGRATION_ENV}"
    SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE
    TIMEOUT 300)
endforeach()
