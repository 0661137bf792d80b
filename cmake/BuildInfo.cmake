# The library nb_build_info: one generated .cpp defining nb::build_info() (declared in
# base/build_info.hpp). A target that runs at every build regenerates it, so the version
# follows new commits without a re-configure; the file changes only when its text does.
# It is a library of its own so that a new commit relinks only what reports the version
# (nbagent, the CLI tests), not everything linking nb_base; and it is tiny, so the one
# object that differs between commits is all ccache misses.
set(NB_BUILD_INFO_CPP ${CMAKE_BINARY_DIR}/generated/build_info.cpp)
set(NB_BUILD_INFO_ARGS
    -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUT=${NB_BUILD_INFO_CPP}
    -DFALLBACK_VERSION=${PROJECT_VERSION} -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
    "-DCOMPILER=${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}"
    -P ${CMAKE_SOURCE_DIR}/cmake/BuildInfoGen.cmake)
# Once now, so the file exists for every target that lists it from configure on.
execute_process(COMMAND ${CMAKE_COMMAND} ${NB_BUILD_INFO_ARGS})
add_custom_target(nb_build_info_gen
  COMMAND ${CMAKE_COMMAND} ${NB_BUILD_INFO_ARGS}
  BYPRODUCTS ${NB_BUILD_INFO_CPP}
  COMMENT "build info"
  VERBATIM)
add_library(nb_build_info STATIC ${NB_BUILD_INFO_CPP})
target_include_directories(nb_build_info PUBLIC ${CMAKE_SOURCE_DIR})
add_dependencies(nb_build_info nb_build_info_gen)
