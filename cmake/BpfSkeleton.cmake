# Compiles a .bpf.c with clang and generates its libbpf skeleton with bpftool, so the
# user-space side always matches the object it loads.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(NB_BPF_ARCH_INCLUDE /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
# clang -target bpf gets the same warnings policy as the C++ code (NB_WERROR).
set(NB_BPF_WARNINGS -Wall)
if(NB_WERROR)
  list(APPEND NB_BPF_WARNINGS -Werror)
endif()

function(nb_bpf_skeleton name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 ${NB_BPF_WARNINGS}
            -I${CMAKE_SOURCE_DIR}/bpf -I${NB_BPF_ARCH_INCLUDE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${ARGN}
    COMMENT "BPF ${src}"
    VERBATIM)
  # bpftool names the skeleton after the file: "name.o" gives "name" on every version,
  # while the `name` argument is unknown to bpftool before 5.11 (Debian 11, Ubuntu 20.04).
  set(named ${CMAKE_CURRENT_BINARY_DIR}/skel-src/${name}.o)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/skel-src
    COMMAND ${CMAKE_COMMAND} -E create_symlink ${obj} ${named}
    COMMAND ${BPFTOOL} gen skeleton ${named} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()

# One static library per agent folder, built from the .cpp files in it, so each
# folder is one unit of the architecture. Include paths are from the repo root.
function(nb_folder_library name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(NOT srcs)
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARGN})
endfunction()
