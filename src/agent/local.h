/* xluo-agent: the local HTTP endpoint (INTERFACE.md: 127.0.0.1:21001,
 * docs/exec.md "Local endpoint"):
 *   GET  /healthz   200 {"status":"ok", ...} while the agent runs
 *   GET  /metrics   Prometheus text: host metrics and the agent's own
 *   POST /v1/push   JSON records (the exec input's JSON format) from
 *                   applications: 200 {"accepted": N}, 400 naming the
 *                   record and field, 413 over max_body
 * A small HTTP/1.1 server on the agent's libuv loop (keep-alive, pipelined
 * requests one at a time, Expect: 100-continue, at most 64 connections,
 * 10 s idle timeout; requests read by http_parse.c): handlers run on the
 * loop thread and see the agent's state without locks. */
#ifndef XL_LOCAL_H
#define XL_LOCAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/rc.h"

struct xl_local_ops {
    /* Fill the /healthz object (status is added). */
    void (*health)(void *ctx, json_t *obj);
    /* Append the /metrics text. */
    xl_rc (*metrics)(void *ctx, struct xl_buf *out);
    /* Take a pushed body: XL_EPARSE/XL_ETOOBIG with err naming the place,
     * *accepted the records taken. *wait: 0 to answer now, else answer
     * once xl_local_stable reports a stable number >= *wait (the records
     * are durable in the outbox). */
    xl_rc (*push)(void *ctx, const char *body, size_t len, size_t *accepted, uint64_t *wait,
                  struct xl_err *err);
    void *ctx;
};

struct xl_local;

/* Listen on addr ("127.0.0.1:21001"). max_body bounds a push. */
xl_rc xl_local_start(uv_loop_t *loop, const char *addr, size_t max_body,
                     const struct xl_local_ops *ops, struct xl_local **out, struct xl_err *err);
/* Everything appended to the outbox up to number stable is durable: answer
 * the pushes waiting for it. */
void xl_local_stable(struct xl_local *l, uint64_t stable);
/* Close the listener and connections (pushes still waiting get no answer:
 * the client sees the connection close); freed once the loop closes the
 * handles. NULL is fine. */
void xl_local_stop(struct xl_local *l);

#endif
