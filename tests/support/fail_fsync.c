/* LD_PRELOAD shim for tests/fsync.rs: once the file named by
 * CADBRIDGE_TEST_FAIL_FSYNC exists, fsync() and fdatasync() of any file
 * whose name ends in "-wal" (SQLite's write-ahead log) fail with EIO, as
 * they do when a disk fails under a running process. Every other file, and
 * every call before the flag file exists, goes to the real libc call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int wal_must_fail(int fd) {
    const char *flag = getenv("CADBRIDGE_TEST_FAIL_FSYNC");
    if (flag == NULL || access(flag, F_OK) != 0) {
        return 0;
    }
    char link[64];
    char target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 4) {
        return 0;
    }
    target[n] = '\0';
    return strcmp(target + n - 4, "-wal") == 0;
}

int fdatasync(int fd) {
    if (wal_must_fail(fd)) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd) {
    if (wal_must_fail(fd)) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
