# SPDX-License-Identifier: GPL-2.0
# Kernel matrix: tests/vm/run.sh boots Debian 12's own kernels (6.1, 6.1 PREEMPT_RT, 6.12,
# named through their meta packages) under qemu TCG with an initramfs holding this build's
# lifemon, vm_work (the workloads) and vm_check (the verdict), and reads the verdict off the
# serial console; five of the integration tests then run inside too (LM_VM_ITS). Root only
# (device nodes in the initramfs); exits 77 otherwise, or fails with CI=true. Label vm: the sanitizer passes of `make test` leave it out, so it runs once.

add_executable(vm_work tests/vm/vm_work.c)
target_link_libraries(vm_work PRIVATE lm_warnings Threads::Threads)
add_executable(vm_check tests/vm/vm_check.c)
target_link_libraries(vm_check PRIVATE lm_warnings PkgConfig::JANSSON)
# Guest programs: the initramfs carries the plain runtime libraries, no sanitizer runtimes.
foreach(t vm_work vm_check)
  target_compile_options(${t} PRIVATE -fno-sanitize=all)
  target_link_options(${t} PRIVATE -fno-sanitize=all)
endforeach()

set(LM_VM_STORM_PROCS 200 CACHE STRING "Processes in the guest's exit_group storm")
set(LM_VM_STORM_THREADS 16 CACHE STRING "Threads per storm process")
set(LM_VM_STORM_ROUNDS 4 CACHE STRING "Storm rounds per kernel")
# Integration tests that also run inside every guest. Not there: it_cli (needs setpriv and
# runuser), it_metrics (needs the 48 MB promtool), it_slow_client (paced for native speed),
# it_hostile (failed once in four guest runs under TCG, cause not yet known).
set(LM_VM_ITS events oom shutdown kernel_loss storm)
set(LM_VM_IT_ARGS "")
foreach(it ${LM_VM_ITS})
  list(APPEND LM_VM_IT_ARGS --it $<TARGET_FILE:it_${it}>)
endforeach()
add_test(NAME vm_kernels
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/vm/run.sh
    --lifemon $<TARGET_FILE:lifemon> --work $<TARGET_FILE:vm_work>
    --check $<TARGET_FILE:vm_check> --dir ${CMAKE_BINARY_DIR}/vm
    --storm ${LM_VM_STORM_PROCS}x${LM_VM_STORM_THREADS}x${LM_VM_STORM_ROUNDS} ${LM_VM_IT_ARGS})
set_tests_properties(vm_kernels PROPERTIES LABELS "integration;vm" TIMEOUT 900
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
