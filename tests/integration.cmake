# SPDX-License-Identifier: GPL-2.0
# Root-only integration tests: each tests/it_<feature>.c runs the built lifemon (argv[1])
# against the real kernel. They exit 77 (ctest "Not Run") when a precondition is missing,
# or fail instead when CI=true. They use fixed ports from 18081 up on 127.0.0.1 (each file's
# are noted below or in it_*.c), so they run serially.

pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto)

# Test-only helpers: an independent RFC 6455 client (not libwebsockets) and the harness.
add_library(lm_itutil STATIC tests/ws_client.c tests/it_util.c)
target_link_libraries(lm_itutil PRIVATE lm_warnings
  PUBLIC PkgConfig::LIBCRYPTO PkgConfig::JANSSON)

foreach(it events oom shutdown cli storm slow_client metrics kernel_loss hostile order
    sink_full stage_fail fields)
  add_executable(it_${it} tests/it_${it}.c)
  target_link_libraries(it_${it} PRIVATE lm_warnings lm_itutil)
  add_test(NAME it_${it} COMMAND it_${it} $<TARGET_FILE:lifemon>)
  set_tests_properties(it_${it} PROPERTIES LABELS integration TIMEOUT 120
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()
# it_events makes a multi-threaded child.
target_link_libraries(it_events PRIVATE Threads::Threads)

# The harness is not under test: sanitizers apply to lifemon (and the unit-tested modules),
# while the harness forks threaded children, which TSan does not support.
foreach(t lm_itutil it_events it_oom it_shutdown it_cli it_storm it_slow_client it_metrics
    it_kernel_loss it_hostile it_order it_sink_full it_stage_fail it_fields)
  target_compile_options(${t} PRIVATE -fno-sanitize=all)
  target_link_options(${t} PRIVATE -fno-sanitize=all)
endforeach()

# it_storm, it_slow_client and it_metrics use ports 18091-18096; their /ws readers run on threads.
target_link_libraries(it_storm PRIVATE Threads::Threads)
target_link_libraries(it_slow_client PRIVATE Threads::Threads)
# Storm plus a 300k-event synthetic load, each waiting for idle books: longer than the rest.
set_tests_properties(it_storm PROPERTIES TIMEOUT 240)

# it_hostile uses ports 18098-18100 and samples lifemon's RSS on a thread; it waits out
# several handshake and idle timeouts.
target_link_libraries(it_hostile PRIVATE Threads::Threads)
set_tests_properties(it_hostile PROPERTIES TIMEOUT 200)

# it_order uses port 18106: a storm with lifemon stopped for 8 s in the middle of it.
set_tests_properties(it_order PROPERTIES TIMEOUT 180)

# it_sink_full uses ports 18101-18102; it mounts a 512 KiB tmpfs (unmounted at the end), fills
# it with a 2 s fork+exec storm and checks the file sink's lines and books, then SIGHUP under
# --user nobody.

# it_stage_fail uses ports 18103-18105 and needs a build with LM_FAULT_INJECT (skips without).

# it_fields uses ports 18107-18108; it creates cgroups named like docker and kubepods containers
# under lm-it-fields in the cgroup2 and v1 memory hierarchies, a 32 MiB memory cgroup for an OOM
# kill, and a setuid-root copy of id in its temp dir, and removes them all.

# it_schema uses port 18109: lifemon's --output file, stdout and /ws stream, after a workload
# with odd arguments and a real OOM kill in its own 32 MiB memory cgroup, must validate
# against docs/event.schema.json (tests/schema_check.py under Debian's python3).
add_executable(it_schema tests/it_schema.c)
target_link_libraries(it_schema PRIVATE lm_warnings lm_itutil)
target_compile_options(it_schema PRIVATE -fno-sanitize=all)
target_link_options(it_schema PRIVATE -fno-sanitize=all)
add_test(NAME it_schema COMMAND it_schema $<TARGET_FILE:lifemon> ${LM_PYTHON3}
  ${CMAKE_SOURCE_DIR}/tests/schema_check.py ${CMAKE_SOURCE_DIR}/docs/event.schema.json)
set_tests_properties(it_schema PROPERTIES LABELS integration TIMEOUT 120
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# Issue 10's /ws protocol: HELLO, filters, since=, LOST notices with seq ranges and waiting for
# consumers that make progress. tests/it_proto.c is their raw-socket stream client, JSON Lines
# loader and filter model. Ports: it_filter 18110, it_resume 18111-18113, it_filter_loss
# 18114-18115, it_stall 18116. The storms are bench/forkbomb-lite runs bounded in time, total
# and live children (argv[2]).
add_library(lm_itproto STATIC tests/it_proto.c)
target_link_libraries(lm_itproto PRIVATE lm_warnings PUBLIC lm_itutil)
target_compile_options(lm_itproto PRIVATE -fno-sanitize=all)
foreach(it filter resume filter_loss stall)
  add_executable(it_${it} tests/it_${it}.c)
  target_link_libraries(it_${it} PRIVATE lm_warnings lm_itproto Threads::Threads)
  target_compile_options(it_${it} PRIVATE -fno-sanitize=all)
  target_link_options(it_${it} PRIVATE -fno-sanitize=all)
  add_test(NAME it_${it} COMMAND it_${it} $<TARGET_FILE:lifemon> $<TARGET_FILE:forkbomb-lite>)
  set_tests_properties(it_${it} PROPERTIES LABELS integration TIMEOUT 120
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()
# it_stall stops lifemon for 30 s in a storm and waits for the catch-up. Label long: the
# sanitizer passes leave it out (it_resume and it_filter_loss drive the same replay and loss
# code there in a fraction of the time).
set_tests_properties(it_stall PROPERTIES TIMEOUT 150 LABELS "integration;long")

# it_page uses port 18120: the live page in Debian's headless Chromium (chromium-driver,
# python3-selenium), against lifemon started, stopped and restarted by the test itself;
# saves it_page.png in the build dir. Bounded at 110 s by the script.
add_test(NAME it_page COMMAND ${LM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/it_page.py
  $<TARGET_FILE:lifemon> ${CMAKE_BINARY_DIR})
set_tests_properties(it_page PROPERTIES LABELS integration TIMEOUT 180
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# it_image (tests/it_image.sh): the Dockerfile built by podman on a debian:12 base that
# debootstrap makes (no registry is reachable), then run with the README's flags; the lifemon
# inside must see a host process's exec and exit and serve /healthz and /metrics. All its state
# is under image/ in the build dir, the base tarball and image layers kept for the next run
# (about 1 GB). Label image: the sanitizer passes leave it out, as the image builds its own
# release binary. Port: a free one.
add_test(NAME it_image COMMAND bash ${CMAKE_SOURCE_DIR}/tests/it_image.sh
  --src ${CMAKE_SOURCE_DIR} --dir ${CMAKE_BINARY_DIR}/image --python ${LM_PYTHON3})
set_tests_properties(it_image PROPERTIES LABELS "integration;image" TIMEOUT 900
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# Issue 11's NATS JetStream sink against a real 3-node nats-server cluster (tests/it_nats.py
# with tests/nats_cluster.py): each case starts its own cluster and lifemon on ports chosen
# free at run time, a bounded storm, and reads the stream back with lifemon --nats-tail. Run
# dirs under BUILD_DIR/nats-it/<case>, kept only after a failure. steady, leader_kill and
# conn_kill also run in the sanitizer passes; the outage cases (10 s without quorum, then the backlog's
# catch-up) and the cold start are labelled long and run in the plain pass only.
foreach(case steady leader_kill conn_kill quorum tiny_backlog cold_start)
  add_test(NAME it_nats_${case} COMMAND ${LM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/it_nats.py
    ${case} $<TARGET_FILE:lifemon> $<TARGET_FILE:forkbomb-lite> ${CMAKE_BINARY_DIR})
  set_tests_properties(it_nats_${case} PROPERTIES LABELS "integration;nats" TIMEOUT 150
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()
foreach(case quorum tiny_backlog cold_start)
  set_tests_properties(it_nats_${case} PROPERTIES LABELS "integration;nats;long")
endforeach()
