# imgfeed_test(NAME SOURCES... [LABELS l...] [TIMEOUT s] [LIBS lib...])
#   builds test_NAME from SOURCES with cmocka and the test support code
#   (tests/support: imgfeed-test-support, which brings imgfeed-common), and
#   registers it with ctest, 120 s unless TIMEOUT says otherwise, with
#   IMGFEED_SOURCE_DIR and IMGFEED_BINARY_DIR in its environment.  Label
#   "servers" marks tests that need the real servers.  Used by tests/ and by
#   the library folders' own tests (imghash/tests/).
function(imgfeed_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;LIBS" ${ARGN})
  add_executable(test_${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(test_${name} PRIVATE imgfeed-test-support imgfeed-common PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND test_${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
                       ENVIRONMENT "IMGFEED_SOURCE_DIR=${PROJECT_SOURCE_DIR};IMGFEED_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
