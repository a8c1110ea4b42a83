# endoked_add_module(NAME <name> SOURCES <files...> DEPS <public deps...> [PRIVATE_DEPS <deps...>])
# One static library per module; its dependencies are readable in the one call that declares it.
function(endoked_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS;DEFINITIONS" ${ARGN})
  set(target endoked_${M_NAME})
  add_library(${target} STATIC ${M_SOURCES})
  add_library(endoked::${M_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(${target} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  target_compile_definitions(${target} PRIVATE ${M_DEFINITIONS})
  endoked_warnings(${target})
endfunction()

function(endoked_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# MPI headers pulled into C++ (directly, or through parallel HDF5) must not drag the C++ bindings.
function(endoked_mpi_c_only target)
  target_compile_definitions(${target} PUBLIC OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
endfunction()
