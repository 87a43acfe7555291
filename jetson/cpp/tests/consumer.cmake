# CTest: install orin_trt from the current build into a scratch prefix, then configure, build and run
# examples/consumer against it with find_package, as docs/cpp.md tells a user to.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DMANIFEST=... -P consumer.cmake
foreach(step
    "${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/examples/consumer;-B;${WORK_DIR}/build;-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/build"
    "${WORK_DIR}/build/my_detector;${MANIFEST}")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer example: `${step}` failed (${rc}):\n${out}\n${err}")
  endif()
endforeach()
if(NOT out MATCHES "yolo-golden: input images \\[1, 3, 64, 96\\]")
  message(FATAL_ERROR "consumer example printed an unexpected line: ${out}")
endif()
message(STATUS "${out}")
