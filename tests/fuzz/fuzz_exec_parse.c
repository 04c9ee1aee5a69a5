/* libFuzzer target: the exec input's parsers (JSON records, Nagios plugin
 * output, Prometheus text) and format detection must never crash, leak or
 * read out of bounds, whatever a script prints; a parser that fails must
 * not have handed anything to the sink. `make fuzz` runs it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/inputs/exec/parse.h"

struct count {
    size_t records;
    size_t bytes; /* touched, so a dangling pointer is read under ASan */
};

static void on_metric(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                      double value, int64_t ts_ms)
{
    struct count *c = ctx;

    c->bytes += strlen(name);
    for (size_t i = 0; i < nlabels; i++)
        c->bytes += strlen(labels[i].name) + strlen(labels[i].value);
    c->records++;
}

static void on_check(void *ctx, const struct xl_check_result *r)
{
    struct count *c = ctx;

    c->bytes += strlen(r->name) + strlen(r->output) + strlen(r->long_output);
    c->records++;
}

static void on_event(void *ctx, const char *type, const json_t *fields, int64_t ts_ms)
{
    struct count *c = ctx;
    char *js = json_dumps(fields, JSON_COMPACT);

    if (!js || !xl_event_type_valid(type))
        abort();
    c->bytes += strlen(js);
    free(js);
    c->records++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct xl_parse_limits lim = {.max_records = 1000, .max_event_bytes = 4096};
    static const struct xl_label extra[] = {{"env", "prod"}, {"perf", "x"}};
    const char *s = (const char *)data;
    struct count c = {0};
    struct xl_rec_sink sink = {on_metric, on_check, on_event, &c};
    struct xl_err err;
    int exit_status = size ? data[0] % 6 - 1 : 0; /* -1 .. 4 */

    (void)xl_exec_format_detect(s, size);
    if (xl_parse_json_records(s, size, 1700000000000LL, &lim, &sink, &err) != XL_OK && c.records)
        abort();
    c.records = 0;
    if (xl_parse_nagios(s, size, exit_status, "fuzz", extra, 2, 1700000000000LL, &lim, &sink,
                        &err) != XL_OK &&
        c.records)
        abort();
    c.records = 0;
    if (xl_parse_prometheus(s, size, extra, 2, 1700000000000LL, &lim, &sink, &err) != XL_OK &&
        c.records)
        abort();
    return 0;
}
