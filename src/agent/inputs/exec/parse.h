/* xluo-agent: parsers for what scripts print and applications push
 * (docs/exec.md): JSON records (seed 003: objects with a required `type`),
 * Nagios plugin output (exit code, status text, long text, perfdata) and
 * the Prometheus text exposition format.
 *
 * Pure functions of their input: no I/O, no clock (the caller passes ts).
 * Every parser is all or nothing: it first checks the whole input, and only
 * when it is valid hands records to the sink; on error the sink has seen
 * nothing and err names the place ("line 3, byte 17: expected ...": lines
 * and bytes in a line count from 1).
 *
 * Records are held to what the server accepts, since it refuses a whole
 * batch for one bad record: at most 64 labels per metric (with extra),
 * check names of 1 to 200 bytes without control characters, output and
 * long output together at most 64 KiB, and a timestamp ts_ms in a record
 * must look like milliseconds since 1970 (1973 to 2286: seconds are an
 * error, not a date in 1970).
 *
 * Errors: XL_EPARSE (malformed input), XL_ETOOBIG (more than
 * lim->max_records records, an event over lim->max_event_bytes), XL_ENOMEM,
 * XL_EINVAL (a bad argument). lim may be NULL and a limit 0: no limit. */
#ifndef XL_EXEC_PARSE_H
#define XL_EXEC_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "common/metric.h"
#include "common/rc.h"


/* A check result as a parser hands it over. Strings are borrowed for the
 * duration of the callback. */
struct xl_check_result {
    const char *name;        /* check name */
    enum xl_check_state state;
    const char *output;      /* status text: the first line, without perfdata */
    const char *long_output; /* the lines after the first, without perfdata; "" if none */
    int64_t ts_ms;
};

/* Where parsed records go. Every pointer is borrowed for the call; the
 * sink copies what it keeps. Callbacks may be NULL (records of that kind
 * are then skipped). */
struct xl_rec_sink {
    void (*metric)(void *ctx, const char *name, const struct xl_label *labels, size_t nlabels,
                   double value, int64_t ts_ms);
    void (*check)(void *ctx, const struct xl_check_result *c);
    /* A custom event: type (validated, see xl_event_type_valid), its
     * fields (a JSON object: every key of the input object but `type` and
     * `ts`) and time. */
    void (*event)(void *ctx, const char *type, const json_t *fields, int64_t ts_ms);
    void *ctx;
};

/* Limits shared by every parser (0: none). */
struct xl_parse_limits {
    size_t max_records;     /* records (metrics + checks + events) per input */
    size_t max_event_bytes; /* one event's fields, compact JSON */
};

enum xl_exec_format { XL_FMT_AUTO = 0, XL_FMT_JSON, XL_FMT_NAGIOS, XL_FMT_PROMETHEUS };
/* "auto", "json", "nagios", "prometheus". */
const char *xl_exec_format_str(enum xl_exec_format f);
bool xl_exec_format_parse(const char *s, enum xl_exec_format *out);
/* Guess the format of a script's stdout: JSON when the first non-blank byte
 * is '{' or '['; Prometheus when every non-blank line is a `#` comment or a
 * `name[{labels}] value [ts]` sample and there is at least one sample;
 * Nagios otherwise (any text and an exit code is a valid plugin result).
 * Samples are checked for syntax only, so a Prometheus text with, say, a
 * duplicate label is detected as such and its parser says what is wrong. */
enum xl_exec_format xl_exec_format_detect(const char *s, size_t len);


/* JSON records: one object, an array of objects, or JSON lines (one object
 * per line, blank lines allowed). In general: JSON texts (each an object or
 * an array of objects) separated by whitespace, so seed 003's
 * pretty-printed object, and several of them, read too. Each object needs
 * `type`:
 *   "metric": {"type":"metric","name":N,"value":V,"labels":{..},"ts":MS}
 *             (labels and ts optional; value a number or "NaN"/"+Inf"/"-Inf";
 *             labels an object of strings; no other keys)
 *   "check":  {"type":"check","name":N,"state":"ok|warning|critical|unknown",
 *              "output":TEXT,"long_output":TEXT,"ts":MS} (output and
 *              long_output optional, "" when absent; state in any case;
 *              no other keys)
 *   any other valid event type: an event; `ts` (integer ms) optional; the
 *   fields keep the input's order. A reserved type in any case ("Log") is
 *   an error.
 * ts (absent or null) defaults to the ts argument. Duplicate keys are an
 * error. Records reach the sink in input order. Errors name the line the
 * JSON text starts on, the record and the field: "line 2: type: required
 * (a string)", "line 1: records[3].type: \"log\" is reserved"; syntax errors
 * the byte: "line 3, byte 9: '}' expected near end of file" (jansson's
 * text). */
xl_rc xl_parse_json_records(const char *s, size_t len, int64_t ts,
                            const struct xl_parse_limits *lim, const struct xl_rec_sink *sink,
                            struct xl_err *err);

/* Nagios plugin output (Nagios plugin guidelines): the exit status gives
 * the state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; anything else
 * UNKNOWN), the first line is `TEXT[|PERFDATA]`, further lines are long
 * text with optional `|PERFDATA` on one of them continuing to the end.
 * Perfdata `'label'=value[UOM];[warn];[crit];[min];[max]` (quoted labels
 * with '' for a quote, ranges like 10:20, ~:5, @1:3 in warn/crit) becomes
 * metrics, with labels {check=name, perf=label} plus extra:
 *   check_perf_value, and check_perf_warn / _crit (the upper bound of the
 *   range, or the lower when the upper is infinite), check_perf_min / _max
 *   when present. Units are converted to base units and named in the label
 *   unit: s/ms/us → seconds, B/KB/MB/GB/TB → bytes (1024 multiples as the
 *   plugins use), % → unit="percent", c → unit="counter", none → no label.
 * Any other UOM (dBm, KiB/MiB/GiB/TiB also count in 1024s) is kept as
 * written in unit=, unconverted. Thresholds, min and max are plain numbers
 * or may repeat the value's UOM ("5ms;10ms"). A value `U` (unknown) gives
 * no check_perf_value; the item's other metrics stay. Extra labels named
 * check, perf or unit are left out. Empty fields and missing trailing
 * fields are fine; more than five non-empty fields are an error.
 * The check result itself is handed to sink->check first, with state,
 * output (the first line trimmed; "(no output)" when empty) and
 * long_output (right-trimmed lines, leading and trailing blank lines
 * dropped; cut with " [truncated]" past 64 KiB with the output), then the
 * metrics, item by item in the order value, warn, crit, min, max. The
 * check counts as a record for lim->max_records. check_name must have 1
 * to 200 bytes without control characters, extra at most 61 labels
 * (XL_EINVAL). Malformed perfdata is an error (XL_EPARSE) naming the item
 * ("perfdata item 2 ('load5=x'): value: expected a number"). */
xl_rc xl_parse_nagios(const char *s, size_t len, int exit_status, const char *check_name,
                      const struct xl_label *extra, size_t nextra, int64_t ts,
                      const struct xl_parse_limits *lim, const struct xl_rec_sink *sink,
                      struct xl_err *err);

/* Prometheus text exposition format 0.0.4: # HELP / # TYPE lines (a
 * metric name; HELP's escapes; TYPE checked for a known type, any case),
 * other # lines ignored, samples `name{l="v",...} value [ts_ms]` with
 * escapes \\ \" \n in label values, values as Go's ParseFloat reads them
 * (NaN, +Inf, -Inf, decimal; not hex). Blank lines and a trailing \r are
 * fine. Label names starting with __ and duplicate label names are errors.
 * Labels in extra are added, after the sample's own, unless the sample
 * sets them. Errors: "line 7, byte 12: expected '=' after label name". */
xl_rc xl_parse_prometheus(const char *s, size_t len, const struct xl_label *extra,
                          size_t nextra, int64_t ts, const struct xl_parse_limits *lim,
                          const struct xl_rec_sink *sink, struct xl_err *err);

#endif
