/* xluo-agent: the records inputs hand to the agent besides metric samples
 * and log lines: check results and custom events (docs/protocol.md), from
 * the exec input and the local push endpoint. */
#ifndef XL_RECORDS_H
#define XL_RECORDS_H

#include <jansson.h>
#include <stdint.h>

#include "common/metric.h"
#include "inputs/exec/parse.h"

/* A check result as shipped. Strings are borrowed for the callback. */
struct xl_check_rec {
    const char *name;
    enum xl_check_state state;
    const char *output;
    const char *long_output; /* NULL or "" for none */
    int exit_code;           /* -1: none (killed, not started, pushed) */
    int64_t duration_ms;     /* -1: none */
    int64_t interval_ms;     /* how often the check runs; -1: not known */
    const char *source;      /* the script's path, "push", ...; NULL for none */
    int64_t ts_ms;
};

/* Where records go; every pointer is borrowed for the call. */
struct xl_record_sink {
    void (*metric)(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                   double value, int64_t ts_ms);
    void (*check)(void *ctx, const struct xl_check_rec *c);
    /* fields: a JSON object; source as for checks. */
    void (*event)(void *ctx, const char *type, const json_t *fields, const char *source,
                  int64_t ts_ms);
    void *ctx;
};

#endif
