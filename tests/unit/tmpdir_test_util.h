/* Helpers shared by the unit tests of modules that keep files (stores,
 * WAL, registry): each test gets a fresh temporary directory, removed with
 * everything in it afterwards. Include after <cmocka.h>; the test file
 * defines _GNU_SOURCE (or _XOPEN_SOURCE 500) first, for nftw. */
#ifndef XL_TMPDIR_TEST_UTIL_H
#define XL_TMPDIR_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline int tmpdir_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* For a cmocka setup: *state = a new directory made from tmpl
 * ("/tmp/xl_NAME_XXXXXX"), a heap string that tmpdir_teardown frees. */
static inline int tmpdir_setup(void **state, const char *tmpl)
{
    char *dir = strdup(tmpl);

    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

/* For a cmocka teardown: remove the directory of tmpdir_setup and all in
 * it. */
static inline int tmpdir_teardown(void **state)
{
    nftw(*state, tmpdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

#endif
