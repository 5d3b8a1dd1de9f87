// The source that gamebot_catch_pch compiles only to build Catch2's precompiled header
// (tests/CMakeLists.txt); it defines nothing.
