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
foreach(f include/orderly/orderly.hpp include/orderly/tls/self_signed.hpp
          lib/cmake/orderly/orderlyConfig.cmake lib/pkgconfig/orderly.pc lib/pkgconfig/orderly-tls.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# find_package(orderly)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
# A program without TLS does not link OpenSSL.
find_program(READELF readelf)
if(READELF)
  execute_process(COMMAND ${READELF} -d ${WORK_DIR}/build/consumer OUTPUT_VARIABLE dyn)
  if(dyn MATCHES "libssl|libcrypto")
    message(FATAL_ERROR "the consumer without TLS links OpenSSL:\n${dyn}")
  endif()
endif()
# find_package(orderly COMPONENTS tls)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}_tls -B ${WORK_DIR}/build_tls -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build_tls)
run(${WORK_DIR}/build_tls/consumer_tls)

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
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs orderly-tls OUTPUT_VARIABLE pc_tls_flags
                RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know orderly-tls")
endif()
separate_arguments(pc_tls_flags UNIX_COMMAND "${pc_tls_flags}")
run(${CXX} ${extra} -std=c++20 ${SOURCE_DIR}_tls/main.cpp ${pc_tls_flags} -o ${WORK_DIR}/consumer-tls-pc)
run(${WORK_DIR}/consumer-tls-pc)
message(STATUS "install consumers (plain and TLS): find_package and pkg-config build and run")
