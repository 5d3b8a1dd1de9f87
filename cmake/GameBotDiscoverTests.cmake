# gamebot_discover_tests(): registers a harness-based test binary with CTest, every test case
# once per backend. Installed with the package config (find_package(GameBotPersistence) loads
# it) and included by the source tree's CMakeLists.txt (add_subdirectory users get it too).
#
#   gamebot_discover_tests(<target>
#     BACKENDS <memory|sqlite|postgres>...  each case runs once per backend ("--backend X")
#     [ISOLATION <transaction|schema|database|none>]  "--isolation X" (default: the harness's)
#     [FRAMEWORK <catch2|gtest>]     default: gtest when <target> links gamebot::harness_gtest
#     [TEST_PREFIX <prefix>]         tests are named "<prefix>-<backend>: <case>"; default <target>
#     [LABELS <label>...]            added to each test beside its backend's label
#     [DATABASE_URL <url>]           postgres: use this server instead of the run's private one
#     [ENVIRONMENT <NAME=value>...]  more environment for every test
#     [EXTRA_ARGS <arg>...]          more arguments for the test binary
#     [PROPERTIES <name> <value>...])  more test properties (not LABELS or ENVIRONMENT: above)
#
# PostgreSQL without DATABASE_URL: one private server for the whole ctest run, shared by every
# test process (harness/include/gamebot/harness/shared_postgres.hpp). The CTest fixture
# "gamebot_shared_postgres" (tests gamebot-shared-postgres-start/-stop, defined once per build
# tree) starts it before the first postgres test and releases it after the last; the tests find
# it through GAMEBOT_TEST_SHARED_SERVER_DIR, a run directory in the build tree. The fixture runs
# `gamebot-store test-server`, the installed tool (target gamebot::store).
#
# Split runs (ctest -j N) need no worker names: each test process is a run of its own, with a
# run id of its own (pid and random bits), so its databases' names never collide.
include_guard(GLOBAL)

# The fixture's setup and cleanup tests, once per build tree; sets `out_run_dir`.
function(_gamebot_shared_postgres_fixture out_run_dir)
  set(run_dir "${CMAKE_BINARY_DIR}/gamebot-shared-postgres")
  set(${out_run_dir} "${run_dir}" PARENT_SCOPE)
  get_property(defined GLOBAL PROPERTY GAMEBOT_SHARED_POSTGRES_FIXTURE)
  if(defined)
    return()
  endif()
  set_property(GLOBAL PROPERTY GAMEBOT_SHARED_POSTGRES_FIXTURE ON)
  if(NOT TARGET gamebot::store)
    message(FATAL_ERROR "gamebot_discover_tests: the gamebot::store tool (gamebot-store) is "
                        "missing; it comes with the GameBotPersistence package")
  endif()
  add_test(NAME gamebot-shared-postgres-start
           COMMAND "$<TARGET_FILE:gamebot::store>" test-server start "${run_dir}")
  add_test(NAME gamebot-shared-postgres-stop
           COMMAND "$<TARGET_FILE:gamebot::store>" test-server stop "${run_dir}")
  set_tests_properties(gamebot-shared-postgres-start PROPERTIES
    FIXTURES_SETUP gamebot_shared_postgres LABELS postgres)
  set_tests_properties(gamebot-shared-postgres-stop PROPERTIES
    FIXTURES_CLEANUP gamebot_shared_postgres LABELS postgres)
endfunction()

function(gamebot_discover_tests target)
  cmake_parse_arguments(ARG "" "ISOLATION;FRAMEWORK;TEST_PREFIX;DATABASE_URL"
                        "BACKENDS;LABELS;ENVIRONMENT;EXTRA_ARGS;PROPERTIES" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gamebot_discover_tests: unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_BACKENDS)
    message(FATAL_ERROR "gamebot_discover_tests(${target}): BACKENDS is required "
                        "(memory, sqlite, postgres)")
  endif()
  foreach(backend IN LISTS ARG_BACKENDS)
    if(NOT backend MATCHES "^(memory|sqlite|postgres)$")
      message(FATAL_ERROR "gamebot_discover_tests(${target}): unknown backend '${backend}' "
                          "(memory, sqlite, postgres)")
    endif()
  endforeach()
  if(ARG_ISOLATION AND NOT ARG_ISOLATION MATCHES "^(transaction|schema|database|none)$")
    message(FATAL_ERROR "gamebot_discover_tests(${target}): unknown ISOLATION "
                        "'${ARG_ISOLATION}' (transaction, schema, database, none)")
  endif()
  if(NOT ARG_FRAMEWORK)
    get_target_property(libraries ${target} LINK_LIBRARIES)
    if(libraries MATCHES "harness_gtest")
      set(ARG_FRAMEWORK gtest)
    else()
      set(ARG_FRAMEWORK catch2)
    endif()
  endif()
  if(ARG_FRAMEWORK STREQUAL "gtest")
    include(GoogleTest)
  elseif(ARG_FRAMEWORK STREQUAL "catch2")
    if(NOT COMMAND catch_discover_tests)
      find_package(Catch2 2 REQUIRED)
      include(Catch)
    endif()
  else()
    message(FATAL_ERROR "gamebot_discover_tests(${target}): unknown FRAMEWORK "
                        "'${ARG_FRAMEWORK}' (catch2, gtest)")
  endif()
  if(NOT ARG_TEST_PREFIX)
    set(ARG_TEST_PREFIX "${target}")
  endif()
  # No square brackets in names: GoogleTest's discovery leaves such tests out of TEST_LIST (a
  # bracket can unbalance a CMake list), and the properties below would miss them.
  if(ARG_TEST_PREFIX MATCHES "[][]")
    message(FATAL_ERROR "gamebot_discover_tests(${target}): TEST_PREFIX may not hold [ or ]")
  endif()

  foreach(backend IN LISTS ARG_BACKENDS)
    set(args --backend ${backend})
    if(ARG_ISOLATION)
      list(APPEND args --isolation ${ARG_ISOLATION})
    endif()
    set(environment ${ARG_ENVIRONMENT})
    set(fixture "")
    if(backend STREQUAL "postgres")
      if(ARG_DATABASE_URL)
        list(APPEND args --database-url "${ARG_DATABASE_URL}")
      else()
        _gamebot_shared_postgres_fixture(run_dir)
        list(APPEND environment "GAMEBOT_TEST_SHARED_SERVER_DIR=${run_dir}")
        set(fixture gamebot_shared_postgres)
        # Built with the tests when the tool comes from the source tree (add_subdirectory).
        get_target_property(tool gamebot::store ALIASED_TARGET)
        if(tool)
          add_dependencies(${target} ${tool})
        endif()
      endif()
    endif()
    set(tests_var "gamebot_${target}_${backend}_tests")
    if(ARG_FRAMEWORK STREQUAL "gtest")
      gtest_discover_tests(${target}
        TEST_PREFIX "${ARG_TEST_PREFIX}-${backend}: "
        EXTRA_ARGS ${args} ${ARG_EXTRA_ARGS}
        TEST_LIST ${tests_var}
        PROPERTIES ${ARG_PROPERTIES})
    else()
      catch_discover_tests(${target}
        TEST_PREFIX "${ARG_TEST_PREFIX}-${backend}: "
        EXTRA_ARGS ${args} ${ARG_EXTRA_ARGS}
        TEST_LIST ${tests_var}
        PROPERTIES ${ARG_PROPERTIES})
    endif()
    # Labels, environment and the fixture are set by a script CTest reads after the discovered
    # tests: the discovery functions would split their list values into separate arguments.
    set(labels ${backend} ${ARG_LABELS})
    set(properties "LABELS \"${labels}\"")
    if(environment)
      string(APPEND properties " ENVIRONMENT \"${environment}\"")
    endif()
    if(fixture)
      string(APPEND properties " FIXTURES_REQUIRED ${fixture}")
    endif()
    set(script "${CMAKE_CURRENT_BINARY_DIR}/${target}_${backend}_gamebot_properties.cmake")
    file(WRITE "${script}"
      "# Written by gamebot_discover_tests(${target}): its ${backend} tests' properties.\n"
      "if(${tests_var})\n"
      "  set_tests_properties(\${${tests_var}} PROPERTIES ${properties})\n"
      "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
  endforeach()
endfunction()
