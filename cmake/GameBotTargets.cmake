# Per-target settings for the project's own code. Warnings are PRIVATE so that
# consumers of the installed libraries never inherit -Werror.
function(gamebot_configure_target target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  if(GAMEBOT_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  endif()
endfunction()

# gamebot_add_library(NAME <short> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates gamebot_<short> with the alias gamebot::<short>, public headers in
# <short>/include, exported under the gamebot:: namespace.
function(gamebot_add_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target gamebot_${ARG_NAME})
  add_library(${target} ${ARG_SOURCES})
  add_library(gamebot::${ARG_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME}
                                             POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  gamebot_configure_target(${target})
  set_property(GLOBAL APPEND PROPERTY GAMEBOT_EXPORTED_TARGETS ${target})
  set_property(GLOBAL APPEND PROPERTY GAMEBOT_HEADER_DIRS ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()

# gamebot_add_test(NAME <exe> SOURCES ... LIBS ... LABELS ... [PROPERTIES ...])
# One executable, registered with CTest one Catch2 test case at a time.
function(gamebot_add_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS})
  gamebot_configure_target(${ARG_NAME})
  # Catch2's header, parsed once for every test (tests/CMakeLists.txt).
  if(TARGET gamebot_catch_pch)
    target_precompile_headers(${ARG_NAME} REUSE_FROM gamebot_catch_pch)
  endif()
  # Several labels form a list; escape its separators so they survive the two
  # list expansions inside catch_discover_tests (else only the first label
  # sticks and `ctest -L <backend>` finds nothing).
  string(REPLACE ";" "\\\\\\\\;" labels "${ARG_LABELS}")
  catch_discover_tests(${ARG_NAME}
    TEST_PREFIX "${ARG_NAME}: "
    PROPERTIES LABELS "${labels}" ${ARG_PROPERTIES})
  # The ThreadSanitizer run builds only these (target gamebot_concurrency_tests).
  if("concurrency" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY GAMEBOT_CONCURRENCY_TESTS ${ARG_NAME})
  endif()
endfunction()
