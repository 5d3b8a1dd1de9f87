# Read by CTest after the discovered GoogleTest cases (see CMakeLists.txt): labels each case
# with "examples", "gtest" and its backend.
foreach(backend memory sqlite postgres)
  if(gamebot_example_gtests_${backend})
    set_tests_properties(${gamebot_example_gtests_${backend}}
      PROPERTIES LABELS "examples;gtest;${backend}")
  endif()
endforeach()
