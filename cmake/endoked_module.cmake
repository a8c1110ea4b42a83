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

# endoked_add_stage(NAME <stage> SOURCES <files...> [DEPS <deps...>] [PRIVATE_DEPS <deps...>])
# One folder under recipes/ is one stage library, endoked::recipe_<stage>. Its register.cpp
# defines endoked::recipes::register_<stage>(engine::Registry&); the app calls every registered
# one (a file generated from this list). The folder itself is the library's include directory,
# so a stage cannot include another stage's headers (it does not link it either).
function(endoked_add_stage)
  cmake_parse_arguments(S "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  endoked_add_module(NAME recipe_${S_NAME}
    SOURCES ${S_SOURCES} register.cpp
    DEPS endoked::engine ${S_DEPS}
    PRIVATE_DEPS ${S_PRIVATE_DEPS})
  target_include_directories(endoked_recipe_${S_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  set_property(GLOBAL APPEND PROPERTY ENDOKED_STAGES ${S_NAME})
endfunction()
