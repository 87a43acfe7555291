# CTest: run a command and check its exit status, its whole stdout against a file, and/or its stderr
# against a regular expression.
#   cmake "-DCMD=prog|arg|arg with spaces" -DEXPECT_RC=0 [-DEXPECT_STDOUT=file] [-DEXPECT_STDERR=regex] -P run_check.cmake
string(REPLACE "|" ";" _cmd "${CMD}")
execute_process(COMMAND ${_cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "`${CMD}` exited ${rc}, expected ${EXPECT_RC}:\n${out}\n${err}")
endif()
if(DEFINED EXPECT_STDOUT)
  file(READ ${EXPECT_STDOUT} expected)
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "`${CMD}` printed:\n${out}\nexpected (${EXPECT_STDOUT}):\n${expected}")
  endif()
endif()
if(DEFINED EXPECT_STDERR AND NOT err MATCHES "${EXPECT_STDERR}")
  message(FATAL_ERROR "`${CMD}` stderr does not match '${EXPECT_STDERR}':\n${err}")
endif()
message(STATUS "${out}${err}")
