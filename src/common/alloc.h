/* xluo: the one allocation wrapper. All heap memory goes through these so
 * that tests can make allocation fail on purpose (xl_alloc_fail_after). */
#ifndef XL_ALLOC_H
#define XL_ALLOC_H

#include <stddef.h>

void *xl_malloc(size_t n);
void *xl_calloc(size_t count, size_t size);
void *xl_realloc(void *p, size_t n);
/* Grow an array to hold at least `need` elements of `size` bytes, doubling.
 * On failure *arr and *cap are unchanged and -1 is returned; 0 on success. */
int xl_grow(void **arr, size_t *cap, size_t need, size_t size);
char *xl_strdup(const char *s);
char *xl_strndup(const char *s, size_t n);
/* printf into a new heap string, NULL on failure. */
char *xl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xl_free(void *p);

/* Test hook: the n-th allocation from now (0 = the next) and every later one
 * fail until reset with a negative n. Not thread-safe; for unit tests. */
void xl_alloc_fail_after(long n);

#endif
