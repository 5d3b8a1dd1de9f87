include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(gamebot_targets GLOBAL PROPERTY GAMEBOT_EXPORTED_TARGETS)
get_property(gamebot_header_dirs GLOBAL PROPERTY GAMEBOT_HEADER_DIRS)

install(TARGETS ${gamebot_targets}
  EXPORT GameBotPersistenceTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
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
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/GameBotPersistence)
