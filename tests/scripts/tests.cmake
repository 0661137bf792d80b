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
