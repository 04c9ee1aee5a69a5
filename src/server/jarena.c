/* xluo-server: per-thread bump arena for jansson. */
#include "jarena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/alloc.h"

/* Chunks are kept between scopes (the largest first) so a worker thread
 * reaches a steady state with no allocation at all. Beyond KEEP_BYTES a
 * thread frees what it used. */
#define CHUNK_MIN (256u << 10)
#define KEEP_BYTES (64u << 20)

struct chunk {
    struct chunk *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

struct arena {
    struct chunk *chunks; /* the current one first */
    bool active;
};

static _Thread_local struct arena arena;
/* Its destructor frees a thread's chunks when the thread exits. */
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void free_chunks(void *unused)
{
    struct chunk *c = arena.chunks, *next;

    for (; c; c = next) {
        next = c->next;
        xl_free(c);
    }
    arena.chunks = NULL;
}

static void make_key(void)
{
    pthread_key_create(&arena_key, free_chunks);
}

static bool owns(const void *p)
{
    for (const struct chunk *c = arena.chunks; c; c = c->next)
        if ((const unsigned char *)p >= c->data && (const unsigned char *)p < c->data + c->size)
            return true;
    return false;
}

static void *arena_alloc(size_t n)
{
    struct chunk *c = arena.chunks;
    size_t need = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);

    /* Look for room in the current chunk, then in the kept ones. */
    for (; c; c = c->next)
        if (c->size - c->used >= need)
            break;
    if (!c) {
        size_t size = CHUNK_MIN;
        while (size < need)
            size *= 2;
        if (arena.chunks && arena.chunks->size * 2 > size)
            size = arena.chunks->size * 2;
        if (!(c = xl_malloc(sizeof(*c) + size)))
            return NULL;
        if (!arena.chunks) /* the thread's first chunk: free them all at exit */
            pthread_setspecific(arena_key, &arena);
        c->size = size;
        c->used = 0;
        c->next = arena.chunks;
        arena.chunks = c;
    }
    c->used += need;
    return c->data + c->used - need;
}

static void *jmalloc(size_t n)
{
    return arena.active ? arena_alloc(n) : malloc(n);
}

static void jfree(void *p)
{
    if (!p || (arena.chunks && owns(p)))
        return;
    free(p);
}

void xl_jarena_install(void)
{
    pthread_once(&arena_once, make_key);
    json_set_alloc_funcs(jmalloc, jfree);
}

void xl_jarena_begin(void)
{
    arena.active = true;
}

void xl_jarena_end(void)
{
    size_t kept = 0;
    struct chunk **pc = &arena.chunks;

    arena.active = false;
    while (*pc) {
        struct chunk *c = *pc;
        c->used = 0;
        if (kept + c->size > KEEP_BYTES) {
            *pc = c->next;
            xl_free(c);
            continue;
        }
        kept += c->size;
        pc = &c->next;
    }
}
