# SPDX-License-Identifier: GPL-2.0
# Kernel matrix: tests/vm/run.sh boots Debian 12's own kernels (6.1, 6.1 PREEMPT_RT, 6.12,
# named through their meta packages) under qemu TCG with an initramfs holding this build's
# lifemon, vm_work (the workloads) and vm_check (the verdict), and reads the verdict off the
# serial console. Root only (device nodes in the initramfs); exits 77 otherwise, or fails with
# CI=true. Label vm: the sanitizer passes of `make test` leave it out, so it runs once.

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
set(LM_VM_STORM_ROUNDS 2 CACHE STRING "Storm rounds per kernel")
add_test(NAME vm_kernels
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/vm/run.sh
    --lifemon $<TARGET_FILE:lifemon> --work $<TARGET_FILE:vm_work>
    --check $<TARGET_FILE:vm_check> --dir ${CMAKE_BINARY_DIR}/vm
    --storm ${LM_VM_STORM_PROCS}x${LM_VM_STORM_THREADS}x${LM_VM_STORM_ROUNDS})
set_tests_properties(vm_kernels PROPERTIES LABELS "integration;vm" TIMEOUT 900
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
