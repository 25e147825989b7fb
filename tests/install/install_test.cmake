# Run with cmake -P; see CMakeLists.txt beside this file.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/orderly/orderly.hpp lib/cmake/orderly/orderlyConfig.cmake lib/pkgconfig/orderly.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# find_package(orderly)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)

# pkg-config
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs orderly OUTPUT_VARIABLE pc_flags
                RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know orderly")
endif()
# C++20 is a minimum: the flags pick no standard, so a C++23 consumer is not downgraded.
if(pc_flags MATCHES "-std=")
  message(FATAL_ERROR "orderly.pc forces a language standard on its consumers: ${pc_flags}")
endif()
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
separate_arguments(extra UNIX_COMMAND "${CXX_FLAGS}")
run(${CXX} ${extra} -std=c++20 ${SOURCE_DIR}/main.cpp ${pc_flags} -o ${WORK_DIR}/consumer-pc)
run(${WORK_DIR}/consumer-pc)
run(${CXX} ${extra} -std=c++23 ${SOURCE_DIR}/cxx23.cpp ${pc_flags} -o ${WORK_DIR}/consumer-cxx23)
# Below C++20 the headers stop with an #error that says what to do.
execute_process(COMMAND ${CXX} ${extra} -std=c++17 -fsyntax-only ${SOURCE_DIR}/main.cpp ${pc_flags}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "orderly needs C\\+\\+20 or later: compile with -std=c\\+\\+20")
  message(FATAL_ERROR "a C++17 build of a consumer must stop with orderly's #error:\n${out}")
endif()
message(STATUS "install consumer: find_package and pkg-config both build and run")
