# SPDX-License-Identifier: GPL-2.0
# What lifemon ships, for `make install` (cmake --install, with DESTDIR) and `make deb` (CPack's
# DEB generator, prefix /usr): the binary, its man page, the systemd unit, the arguments file
# for the unit, the README and the licence. The unit and the Debian control files are made at
# configure time from deploy/, with the paths of this CMAKE_INSTALL_PREFIX. Included from
# CMakeLists.txt.

include(GNUInstallDirs)

# GNUInstallDirs puts the configuration under /etc for prefix /usr and under PREFIX/etc
# otherwise; the unit goes where systemd looks: /lib/systemd/system for /usr (Debian 12's
# packages use it; /usr is merged, so it is also /usr/lib/systemd/system), and
# PREFIX/lib/systemd/system otherwise (systemd reads /usr/local/lib/systemd/system too).
if(LM_SYSTEMD_UNITDIR)
  set(LM_UNITDIR ${LM_SYSTEMD_UNITDIR})
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(LM_UNITDIR /lib/systemd/system)
else()
  set(LM_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(LM_DEFAULT_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default)
set(LM_DEFAULT_FILE ${LM_DEFAULT_DIR}/lifemon)

set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/deploy/systemd/lifemon.service ${CMAKE_SOURCE_DIR}/docs/lifemon.8
  ${CMAKE_SOURCE_DIR}/COPYING ${CMAKE_SOURCE_DIR}/deploy/debian/copyright.in
  ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles.in)

# deploy/systemd/lifemon.service names the Debian package's paths; point them at this prefix.
file(READ ${CMAKE_SOURCE_DIR}/deploy/systemd/lifemon.service LM_UNIT)
string(REPLACE "/usr/bin/lifemon" "${CMAKE_INSTALL_FULL_BINDIR}/lifemon" LM_UNIT "${LM_UNIT}")
string(REPLACE "/etc/default/lifemon" "${LM_DEFAULT_FILE}" LM_UNIT "${LM_UNIT}")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/install/lifemon.service CONTENT "${LM_UNIT}"
  @ONLY)

# Man pages are stored compressed (Debian policy 12.1); -n keeps name and time out of the
# header, so the package does not change when nothing else does.
execute_process(COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/docs/lifemon.8
  OUTPUT_FILE ${CMAKE_BINARY_DIR}/install/lifemon.8.gz RESULT_VARIABLE LM_GZIP_RC)
if(NOT LM_GZIP_RC EQUAL 0)
  message(FATAL_ERROR "lifemon: cannot compress docs/lifemon.8: gzip exited ${LM_GZIP_RC}")
endif()

# A machine-readable Debian copyright file whose licence paragraph is COPYING itself, so the
# licence travels with the package (and with make install) and names nothing outside it.
file(READ ${CMAKE_SOURCE_DIR}/deploy/debian/copyright.in LM_COPYRIGHT)
file(STRINGS ${CMAKE_SOURCE_DIR}/COPYING LM_COPYING_LINES)
foreach(line IN LISTS LM_COPYING_LINES)
  if(line MATCHES "^[ \t]*$")
    string(APPEND LM_COPYRIGHT " .\n")
  else()
    string(APPEND LM_COPYRIGHT " ${line}\n")
  endif()
endforeach()
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/install/copyright CONTENT "${LM_COPYRIGHT}")
configure_file(${CMAKE_SOURCE_DIR}/deploy/debian/conffiles.in
  ${CMAKE_BINARY_DIR}/install/debian/conffiles @ONLY)

install(TARGETS lifemon RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/install/lifemon.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_BINARY_DIR}/install/lifemon.service DESTINATION ${LM_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/deploy/default/lifemon DESTINATION ${LM_DEFAULT_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_BINARY_DIR}/install/copyright
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# --- the Debian package (make deb: scripts/make-deb.sh) ---
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lifemon)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_CONTACT "lifemon maintainers <maintainers@users.noreply.b-seed-3a0ee1b8.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "stream every process exec, exit and OOM kill as JSON (eBPF)")
# CPack writes each line of this as a line of the control file's long description.
set(CPACK_PACKAGE_DESCRIPTION "lifemon watches every process on the host start, end and get
OOM-killed, through eBPF programs on BTF tracepoints, and streams each event as
JSON to WebSocket clients, stdout, a JSON Lines file and NATS JetStream, with
Prometheus counters that account for every event. It needs root and a kernel
with BTF, 5.19 or newer. The systemd unit lifemon.service is installed, not
enabled: systemctl enable --now lifemon")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binary itself: dpkg-shlibdeps maps each library it links to its package.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/install/debian/conffiles
  ${CMAKE_SOURCE_DIR}/deploy/debian/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
  ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
