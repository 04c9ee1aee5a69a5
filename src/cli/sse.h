/* xluo: an incremental parser of Server-Sent Events (the WHATWG "event
 * stream" format), fed whatever chunks the network delivers.
 *
 * Lines end with CRLF, LF or CR (a CRLF split across two chunks counts
 * once). `field: value` lines fill the event being built (one space after
 * the colon is dropped): `data` lines are joined with '\n', `event` sets its
 * type, `id` the event's id (ignored when it holds a NUL; it becomes the
 * last event id, kept across events and reconnections, once the event is
 * complete), `retry` is left to the caller; a line that starts with ':' is
 * a comment; an empty line completes the event and dispatches it, unless it
 * has no data. Lines longer than the parser's maximum are an error. */
#ifndef XL_CLI_SSE_H
#define XL_CLI_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/rc.h"

/* Longest line (and event data) accepted. */
#define XL_SSE_MAX_LINE (16u << 20)

/* One dispatched event; everything is borrowed for the callback only. */
struct xl_sse_event {
    const char *type; /* "message" unless an `event` field said otherwise */
    const char *data; /* NUL-terminated, without the final '\n' */
    size_t len;
    const char *id; /* the last event id so far ("" when none) */
};

/* Return non-zero to stop: xl_sse_feed then returns XL_ESTATE. */
typedef int (*xl_sse_event_fn)(void *ctx, const struct xl_sse_event *ev);

struct xl_sse {
    xl_sse_event_fn cb;
    void *ctx;
    struct xl_buf line, data, type;
    struct xl_buf id;       /* the id of the event being read */
    struct xl_buf last;     /* the last event id: of the last complete event */
    bool after_cr;          /* the last byte was CR: a LF right after it is no new line */
    bool started;           /* past the optional byte order mark */
    unsigned bom;           /* bytes of it seen so far */
    unsigned long comments; /* comment lines seen (pings) */
};

/* Initialise p to call cb for each event. No allocation. */
void xl_sse_init(struct xl_sse *p, xl_sse_event_fn cb, void *ctx);
void xl_sse_cleanup(struct xl_sse *p);

/* Forget the half-read line and event (a new connection), keeping the last
 * event id (an id in the half-read event does not count). */
void xl_sse_reset(struct xl_sse *p);

/* Set the last event id (the id to resume from). XL_ENOMEM. */
xl_rc xl_sse_set_id(struct xl_sse *p, const char *id);

/* The last event id ("" when none). Borrowed. */
const char *xl_sse_last_id(const struct xl_sse *p);

/* Parse n more bytes, calling cb for each complete event. XL_ETOOBIG for
 * a line or event over XL_SSE_MAX_LINE, XL_ENOMEM, XL_ESTATE when cb asked
 * to stop (the rest of buf is not parsed). */
xl_rc xl_sse_feed(struct xl_sse *p, const char *buf, size_t n);

#endif
