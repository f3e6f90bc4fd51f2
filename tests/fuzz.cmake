# SPDX-License-Identifier: GPL-2.0
# libFuzzer targets for the pure modules that parse or write untrusted bytes: core/json.c (the
# event writer), net/http.c (routes, Origin, query, token), net/filter.c (the /ws query parser
# and matcher), core/cgroup.c (cgroup paths from the kernel, and the id table) and core/rec.c
# (variable-size kernel records). libFuzzer comes with clang, not with the project's compiler,
# so clang is probed and invoked directly, whatever CMAKE_C_COMPILER is. Tests fuzz_json,
# fuzz_http, fuzz_filter, fuzz_cgroup and fuzz_rec (label fuzz) run each target for
# LM_FUZZ_SECONDS over a scratch copy of tests/fuzz/corpus/<name>.
# Without a working clang and libFuzzer they are skipped (exit 77), or fail when CI=true.
# Included from CMakeLists.txt.

set(LM_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz test runs (ctest -L fuzz)")
find_program(LM_FUZZ_CLANG NAMES clang-14 clang)
if(NOT JANSSON_FOUND)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
endif()

set(LM_FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)
# The warnings of lm_warnings, plus the sanitizers libFuzzer is meant to run with.
set(LM_FUZZ_FLAGS -g -O1 -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla
  -Wimplicit-fallthrough)
if(LM_WERROR)
  list(APPEND LM_FUZZ_FLAGS -Werror)
endif()
# pkg-config's flags (cached, so also set when the module was checked in an earlier run)
list(APPEND LM_FUZZ_FLAGS ${JANSSON_CFLAGS})

# Probe: clang links a fuzzer with ASan and UBSan (libclang-rt-14-dev on Debian 12).
set(LM_FUZZ_WHY "")
if(NOT LM_FUZZ_CLANG)
  set(LM_FUZZ_WHY "clang not found (Debian: apt-get install clang libclang-rt-14-dev)")
else()
  file(WRITE ${LM_FUZZ_DIR}/probe/probe.c
    "#include <stddef.h>\n#include <stdint.h>\n"
    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return n && d[0] == 1; }\n")
  execute_process(
    COMMAND ${LM_FUZZ_CLANG} ${LM_FUZZ_FLAGS} probe.c -o probe
    WORKING_DIRECTORY ${LM_FUZZ_DIR}/probe
    RESULT_VARIABLE lm_fuzz_rc OUTPUT_VARIABLE lm_fuzz_out ERROR_VARIABLE lm_fuzz_out)
  if(NOT lm_fuzz_rc EQUAL 0)
    string(REGEX REPLACE "\n.*" "" lm_fuzz_out "${lm_fuzz_out}")
    string(CONCAT LM_FUZZ_WHY "${LM_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined does not "
      "link (Debian: apt-get install libclang-rt-14-dev): ${lm_fuzz_out}")
  endif()
endif()

set(lm_fuzz_json_srcs tests/fuzz/fuzz_json.c tests/rec_build.c core/json.c core/rec.c core/wstatus.c)
set(lm_fuzz_json_deps tests/fuzz/fuzz_guard.h tests/rec_build.h core/json.h core/rec.h core/wstatus.h bpf/lm_event.h)
set(lm_fuzz_json_libs ${JANSSON_LDFLAGS})
set(lm_fuzz_http_srcs tests/fuzz/fuzz_http.c net/http.c)
set(lm_fuzz_http_deps tests/fuzz/fuzz_guard.h net/http.h)
set(lm_fuzz_http_libs "")
set(lm_fuzz_filter_srcs tests/fuzz/fuzz_filter.c net/filter.c)
set(lm_fuzz_filter_deps tests/fuzz/fuzz_guard.h net/filter.h bpf/lm_event.h)
set(lm_fuzz_filter_libs "")
set(lm_fuzz_cgroup_srcs tests/fuzz/fuzz_cgroup.c core/cgroup.c)
set(lm_fuzz_cgroup_deps tests/fuzz/fuzz_guard.h core/cgroup.h)
set(lm_fuzz_cgroup_libs "")
set(lm_fuzz_rec_srcs tests/fuzz/fuzz_rec.c core/rec.c core/json.c core/wstatus.c)
set(lm_fuzz_rec_deps tests/fuzz/fuzz_guard.h core/rec.h core/json.h core/wstatus.h bpf/lm_event.h)
set(lm_fuzz_rec_libs ${JANSSON_LDFLAGS})

set(lm_fuzz_bins "")
foreach(f json http filter cgroup rec)
  set(bin ${LM_FUZZ_DIR}/fuzz_${f})
  if(LM_FUZZ_WHY STREQUAL "")
    set(srcs "")
    foreach(s ${lm_fuzz_${f}_srcs})
      list(APPEND srcs ${CMAKE_SOURCE_DIR}/${s})
    endforeach()
    set(deps "")
    foreach(s ${lm_fuzz_${f}_deps})
      list(APPEND deps ${CMAKE_SOURCE_DIR}/${s})
    endforeach()
    add_custom_command(OUTPUT ${bin}
      COMMAND ${LM_FUZZ_CLANG} ${LM_FUZZ_FLAGS} -I${CMAKE_SOURCE_DIR} ${srcs}
              ${lm_fuzz_${f}_libs} -o ${bin}
      DEPENDS ${srcs} ${deps}
      COMMENT "FUZZ fuzz_${f} (clang, libFuzzer + ASan + UBSan)" VERBATIM)
    list(APPEND lm_fuzz_bins ${bin})
    add_test(NAME fuzz_${f}
      COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzz.sh ${bin}
              ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${f} ${LM_FUZZ_SECONDS}
              ${LM_FUZZ_DIR}/artifacts/${f})
  else()
    add_test(NAME fuzz_${f}
      COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzz.sh --missing fuzz_${f}
              "${LM_FUZZ_WHY}")
  endif()
  set_tests_properties(fuzz_${f} PROPERTIES LABELS fuzz TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()

if(LM_FUZZ_WHY STREQUAL "")
  add_custom_target(lm_fuzzers ALL DEPENDS ${lm_fuzz_bins})
else()
  message(WARNING "lifemon: fuzz targets not built: ${LM_FUZZ_WHY}")
endif()
