# SPDX-License-Identifier: GPL-2.0
# Unit tests: one cmocka executable per module, linking only that module plus tests/mock_*.c.
# Pure modules need no root, BPF or network; included from the top-level CMakeLists.txt.

# Links mock_log in place of lm_log; an archive, so a test pulls it in only if its module logs.
add_library(lm_mock_log STATIC tests/mock_log.c)
target_link_libraries(lm_mock_log PRIVATE lm_warnings)

# Builds kernel-format records and guard-page buffers for the record and JSON tests.
add_library(lm_test_rec STATIC tests/rec_build.c)
target_link_libraries(lm_test_rec PRIVATE lm_warnings)

add_executable(test_json tests/test_json.c)
target_link_libraries(test_json PRIVATE lm_warnings lm_json lm_rec lm_test_rec lm_mock_log
  PkgConfig::JANSSON PkgConfig::CMOCKA)

add_executable(test_rec tests/test_rec.c)
target_link_libraries(test_rec PRIVATE lm_warnings lm_rec lm_test_rec PkgConfig::CMOCKA)

add_executable(test_wstatus tests/test_wstatus.c)
target_link_libraries(test_wstatus PRIVATE lm_warnings lm_wstatus lm_mock_log PkgConfig::CMOCKA)

add_executable(test_ring tests/test_ring.c)
target_include_directories(test_ring PRIVATE ${CK_INCLUDE})
target_link_libraries(test_ring PRIVATE lm_warnings lm_ring lm_mock_log ${CK_LIB}
  PkgConfig::CMOCKA Threads::Threads)

add_executable(test_config tests/test_config.c)
target_link_libraries(test_config PRIVATE lm_warnings lm_config lm_mock_log PkgConfig::CMOCKA)

add_executable(test_pset tests/test_pset.c)
target_link_libraries(test_pset PRIVATE lm_warnings lm_pset PkgConfig::CMOCKA)

add_executable(test_hist tests/test_hist.c)
target_link_libraries(test_hist PRIVATE lm_warnings lm_hist lm_mock_log PkgConfig::CMOCKA)

add_executable(test_http tests/test_http.c)
target_link_libraries(test_http PRIVATE lm_warnings lm_http lm_mock_log PkgConfig::CMOCKA)

add_executable(test_filter tests/test_filter.c)
target_link_libraries(test_filter PRIVATE lm_warnings lm_filter PkgConfig::CMOCKA)

add_executable(test_www tests/test_www.c)
target_link_libraries(test_www PRIVATE lm_warnings lm_www PkgConfig::CMOCKA)

add_executable(test_stats tests/test_stats.c)
target_link_libraries(test_stats PRIVATE lm_warnings lm_stats lm_mock_log PkgConfig::CMOCKA)

add_executable(test_sink tests/test_sink.c)
target_link_libraries(test_sink PRIVATE lm_warnings lm_sink lm_mock_log PkgConfig::CMOCKA
  Threads::Threads)

add_executable(test_merge tests/test_merge.c)
target_link_libraries(test_merge PRIVATE lm_warnings lm_merge PkgConfig::CMOCKA)

add_executable(test_cgroup tests/test_cgroup.c)
target_link_libraries(test_cgroup PRIVATE lm_warnings lm_cgroup PkgConfig::CMOCKA)

# The composition root, built without a reader or ws server: no root, BPF or network.
add_executable(test_pipeline tests/test_pipeline.c)
target_link_libraries(test_pipeline PRIVATE lm_warnings lm_pipeline lm_json lm_test_rec
  PkgConfig::CMOCKA Threads::Threads)

# Against a real nats-server (Debian's, single node, loopback, free port): no root needed.
add_executable(test_nats tests/test_nats.c)
target_link_libraries(test_nats PRIVATE lm_warnings lm_nats PkgConfig::CMOCKA)

foreach(t test_json test_rec test_wstatus test_ring test_config test_hist test_pset test_http test_filter
    test_stats test_sink test_merge test_cgroup test_pipeline
    test_www test_nats)
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()
# Code that runs on one thread only (parsers and the serializer's writers): the TSan pass
# (make test-tsan) leaves these out, since a race detector finds nothing in them, and
# test_json alone took 169 s of TSan there (18 s plain, 71 s under ASan, which keeps them).
foreach(t test_json test_rec test_wstatus test_config test_http test_filter test_www)
  set_tests_properties(${t} PROPERTIES LABELS "unit;one_thread")
endforeach()

# The published event schema (docs/event.schema.json) and its checker, tests/schema_check.py:
# good lines and README.md's examples pass, each bad line fails for its stated reason.
# Debian's python3, whose python3-jsonschema (4.10) is the one the checker is written for.
set(LM_PYTHON3 /usr/bin/python3 CACHE FILEPATH "python3 with python3-jsonschema")
add_test(NAME schema_unit COMMAND ${LM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/schema_unit.py
  ${CMAKE_SOURCE_DIR}/tests/schema_check.py ${CMAKE_SOURCE_DIR}/tests/data
  ${CMAKE_SOURCE_DIR}/docs/event.schema.json ${CMAKE_SOURCE_DIR}/README.md)
set_tests_properties(schema_unit PROPERTIES LABELS unit TIMEOUT 120)
