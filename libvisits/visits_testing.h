/*
 * visits_testing.h: fault injection for libvisits' own tests. Not installed, not API.
 *
 * Every system call the library makes on the counter's files goes through a table
 * (libvisits/sys.c). visits_testing_syscall() replaces one entry, by name, in the loaded
 * library (shared or static) and returns the previous function so a replacement can
 * pass calls through. fn == NULL restores the libc function. Names: "openat", "read",
 * "write", "fsync", "fchmod", "fstat", "fstatat", "renameat", "unlinkat", "close",
 * "flock", "readlink", "faccessat" (the rows of VISITS__SYSCALLS in visits_int.h). The signatures
 * are those of libc (openat takes a mode_t third argument, always passed). Returns NULL for an
 * unknown name. Not thread-safe: set replacements while no handle is in use.
 */
#ifndef VISITS_TESTING_H
#define VISITS_TESTING_H

#include "visits.h"

#ifdef __cplusplus
extern "C" {
#endif

VISITS_API void *visits_testing_syscall(const char *name, void *fn);

#ifdef __cplusplus
}
#endif

#endif
