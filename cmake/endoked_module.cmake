# The layering rule (DESIGN.md §2): the endoked modules each layer may link. A module that lists
# another is refused at configure time, so an include across the rule cannot build (a module's
# headers are visible only to targets that link it).
set(ENDOKED_MAY_LINK_core "")
set(ENDOKED_MAY_LINK_data core)
set(ENDOKED_MAY_LINK_distributed core)
set(ENDOKED_MAY_LINK_engine core data distributed)
set(ENDOKED_MAY_LINK_pkg core data)
set(ENDOKED_MAY_LINK_recipe core data distributed engine pkg)

# endoked_add_module(NAME <name> [LAYER <layer>] SOURCES <files...> DEPS <public deps...>
#                    [PRIVATE_DEPS <deps...>])
# One static library per module; its dependencies are readable in the one call that declares it.
# LAYER defaults to NAME (core, data, distributed, engine); pkg/* and recipes/* give theirs.
function(endoked_add_module)
  cmake_parse_arguments(M "" "NAME;LAYER" "SOURCES;DEPS;PRIVATE_DEPS;DEFINITIONS" ${ARGN})
  if(NOT M_LAYER)
    set(M_LAYER ${M_NAME})
  endif()
  set_property(GLOBAL PROPERTY ENDOKED_LAYER_OF_${M_NAME} ${M_LAYER})
  foreach(dep IN LISTS M_DEPS M_PRIVATE_DEPS)
    if(dep MATCHES "^endoked::(.+)$")
      get_property(dep_layer GLOBAL PROPERTY ENDOKED_LAYER_OF_${CMAKE_MATCH_1})
      if(NOT dep_layer)
        message(FATAL_ERROR "layering: ${M_NAME} links ${dep}, which is not declared (yet)")
      endif()
      if(NOT dep_layer IN_LIST ENDOKED_MAY_LINK_${M_LAYER})
        message(FATAL_ERROR "layering: ${M_NAME} (layer ${M_LAYER}) may not link ${dep} "
                            "(layer ${dep_layer}); ${M_LAYER} may link: ${ENDOKED_MAY_LINK_${M_LAYER}}")
      endif()
    endif()
  endforeach()
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
  endoked_add_module(NAME recipe_${S_NAME} LAYER recipe
    SOURCES ${S_SOURCES} register.cpp
    DEPS endoked::engine ${S_DEPS}
    PRIVATE_DEPS ${S_PRIVATE_DEPS})
  target_include_directories(endoked_recipe_${S_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  set_property(GLOBAL APPEND PROPERTY ENDOKED_STAGES ${S_NAME})
endfunction()
