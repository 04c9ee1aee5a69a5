/* xluo-server: a per-thread arena for jansson on the ingest path.
 *
 * Decoding a batch builds a jansson tree of many small objects; with
 * malloc/free that is most of the server's CPU (docs/performance.md).
 * Between xl_jarena_begin() and xl_jarena_end() on a thread, jansson's
 * allocations on that thread come from a bump arena and its frees of arena
 * memory do nothing; xl_jarena_end() releases everything at once. Outside
 * a scope (and for pointers not in the arena) jansson uses malloc/free.
 * A tree built inside a scope must not outlive it. */
#ifndef XL_JARENA_H
#define XL_JARENA_H

/* Route jansson's allocations through the arena logic. Call once at start,
 * before any other thread uses jansson. */
void xl_jarena_install(void);

/* Open / close the calling thread's scope. Not nested. */
void xl_jarena_begin(void);
void xl_jarena_end(void);

#endif
