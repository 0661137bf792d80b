# The layer rule over the tree's own includes, and the check itself on a made-up tree.
add_test(NAME layers COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check-layers.sh)
add_test(NAME layers.check_fails_on_an_upward_include COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_layers_test.sh)
# The function-length rule over the tree, and the check itself on planted long functions.
add_test(NAME functions COMMAND python3 ${CMAKE_SOURCE_DIR}/scripts/check-functions.py)
add_test(NAME functions.check_fails_on_an_81_line_function COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_functions_test.sh)
# docs/config.md and `nbagent run --help` name the same flags, values and defaults.
if(TARGET nbagent)
  add_test(NAME config_doc COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/config_doc_test.sh
    $<TARGET_FILE:nbagent> ${CMAKE_SOURCE_DIR}/docs/config.md)
endif()
# The systemd unit: systemd-analyze verify and the offline security score; and the check
# itself on a doctored copy (an unknown Type=), which must fail.
if(TARGET nbagent)
  add_test(NAME unit_file COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/unit_file_test.sh
    ${CMAKE_BINARY_DIR}/packaging/nbagent@.service $<TARGET_FILE:nbagent>)
  set_tests_properties(unit_file PROPERTIES SKIP_RETURN_CODE 77)
  add_test(NAME unit_file.check_fails_on_a_bad_unit COMMAND bash -c
    "sed 's/^Type=notify$/Type=notifyy/' \"$1\" >\"$3\" && ! bash ${CMAKE_CURRENT_LIST_DIR}/unit_file_test.sh \"$3\" \"$2\""
    _ ${CMAKE_BINARY_DIR}/packaging/nbagent@.service $<TARGET_FILE:nbagent>
    ${CMAKE_CURRENT_BINARY_DIR}/bad-nbagent@.service)
  # ... and on a filter that no longer gives bpf() back after the deny list.
  add_test(NAME unit_file.check_fails_without_bpf COMMAND bash -c
    "sed '/^SystemCallFilter=bpf /d' \"$1\" >\"$3\" && ! bash ${CMAKE_CURRENT_LIST_DIR}/unit_file_test.sh \"$3\" \"$2\""
    _ ${CMAKE_BINARY_DIR}/packaging/nbagent@.service $<TARGET_FILE:nbagent>
    ${CMAKE_CURRENT_BINARY_DIR}/nobpf-nbagent@.service)
endif()
# nbagent(8) names every command and every option --help shows, and each name an option
# takes; and the check itself on a page with one option, or one name, taken out, which
# must fail.
if(TARGET nbagent AND TARGET nb_man)
  add_test(NAME man_page COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/man_page_test.sh
    $<TARGET_FILE:nbagent> ${CMAKE_BINARY_DIR}/packaging/nbagent.8)
  add_test(NAME man_page.check_fails_on_a_missing_option COMMAND bash -c
    "sed 's/wake-rate/wake_rate/g' \"$2\" >\"$3\" && ! bash ${CMAKE_CURRENT_LIST_DIR}/man_page_test.sh \"$1\" \"$3\""
    _ $<TARGET_FILE:nbagent> ${CMAKE_BINARY_DIR}/packaging/nbagent.8 ${CMAKE_CURRENT_BINARY_DIR}/bad-nbagent.8)
  add_test(NAME man_page.check_fails_on_a_missing_name COMMAND bash -c
    "sed 's/|.f.I.kernel.f.R.//' \"$2\" >\"$3\" && ! bash ${CMAKE_CURRENT_LIST_DIR}/man_page_test.sh \"$1\" \"$3\""
    _ $<TARGET_FILE:nbagent> ${CMAKE_BINARY_DIR}/packaging/nbagent.8 ${CMAKE_CURRENT_BINARY_DIR}/bad-name-nbagent.8)
endif()
# The bash completion, through bash-completion as an interactive shell runs it.
if(TARGET nbagent)
  add_test(NAME completion COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/completion_test.sh
    ${CMAKE_SOURCE_DIR}/packaging/completion/nbagent $<TARGET_FILE:nbagent>)
  set_tests_properties(completion PROPERTIES SKIP_RETURN_CODE 77)
endif()
# The matrices' scenario list (vagrant/scenarios.sh) and the Vagrant machines' pick from
# it; and the check itself on a list naming a script the tree lacks, which must fail.
add_test(NAME scenarios COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/scenarios_test.sh ${CMAKE_SOURCE_DIR})
add_test(NAME scenarios.check_fails_on_a_missing_script COMMAND bash -c
  "sed 's|tests/integration/gso.sh|tests/integration/no_such.sh|' \"$1/vagrant/scenarios.sh\" >\"$2\" && ! bash ${CMAKE_CURRENT_LIST_DIR}/scenarios_test.sh \"$1\" \"$2\""
  _ ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/bad-scenarios.sh)
