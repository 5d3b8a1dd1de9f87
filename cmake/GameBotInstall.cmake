include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(gamebot_targets GLOBAL PROPERTY GAMEBOT_EXPORTED_TARGETS)
get_property(gamebot_header_dirs GLOBAL PROPERTY GAMEBOT_HEADER_DIRS)

# Test-framework adapters go to export sets of their own, loaded by the package config only
# when that framework is found, so a project using one framework never needs the other.
set(gamebot_catch2_targets ${gamebot_targets})
list(FILTER gamebot_catch2_targets INCLUDE REGEX "catch2")
set(gamebot_gtest_targets ${gamebot_targets})
list(FILTER gamebot_gtest_targets INCLUDE REGEX "gtest")
list(FILTER gamebot_targets EXCLUDE REGEX "catch2|gtest")

install(TARGETS ${gamebot_targets}
  EXPORT GameBotPersistenceTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(framework catch2 gtest)
  if(gamebot_${framework}_targets)
    install(TARGETS ${gamebot_${framework}_targets}
      EXPORT GameBotPersistence_${framework}_Targets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(EXPORT GameBotPersistence_${framework}_Targets
      NAMESPACE gamebot::
      DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GameBotPersistence)
  endif()
endforeach()
foreach(dir ${gamebot_header_dirs})
  install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()

install(EXPORT GameBotPersistenceTargets
  NAMESPACE gamebot::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GameBotPersistence)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/GameBotPersistenceConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/GameBotPersistenceConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GameBotPersistence)
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/GameBotPersistenceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/GameBotPersistenceConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/GameBotPersistenceConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/GameBotDiscoverTests.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GameBotPersistence)

# pkg-config file for non-CMake users; relocatable (paths relative to the .pc file).
file(RELATIVE_PATH GAMEBOT_PC_RELATIVE_PREFIX
  "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" GAMEBOT_PC_RELATIVE_PREFIX "${GAMEBOT_PC_RELATIVE_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/gamebot-persistence.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/gamebot-persistence.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gamebot-persistence.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# The harness mains, each only when its framework was found (like their CMake export sets).
set(gamebot_catch2_pc_name gamebot-persistence-catch2-main)
set(gamebot_gtest_pc_name gamebot-persistence-gtest)
foreach(framework catch2 gtest)
  if(gamebot_${framework}_targets)
    set(pc ${gamebot_${framework}_pc_name}.pc)
    configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.in ${CMAKE_CURRENT_BINARY_DIR}/${pc} @ONLY)
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  endif()
endforeach()
