/* xluo-agent tail input: the config table of one inputs.tail[] item. The
 * agent's config nests it as a LIST (item_size sizeof(struct
 * xl_tail_input_cfg)); xl_tail_start validates what a table cannot (names
 * unique, paths present, filters compile). */
#include <stddef.h>

#include "tail.h"

#define OFF(f) offsetof(struct xl_tail_input_cfg, f)
#define MLOFF(f) offsetof(struct xl_tail_multiline_cfg, f)

static const struct xl_cfg_key multiline_keys[] = {
    {.name = "start", .type = XL_CFG_STR, .offset = MLOFF(start),
     .desc = "PCRE2 regex matching the first line of a record (e.g. '^\\d{4}-\\d\\d-\\d\\d'); "
             "unset: every line is a record"},
    {.name = "max_lines", .type = XL_CFG_INT, .def = "500", .offset = MLOFF(max_lines),
     .min = 1, .max = 1000000, .desc = "a record is cut after this many lines"},
    {.name = "max_bytes", .type = XL_CFG_SIZE, .def = "1MiB", .offset = MLOFF(max_bytes),
     .min = 64, .max = 64LL << 20,
     .desc = "a record is cut before it would pass this size (a longer line is its own record)"},
    {.name = "flush_timeout", .type = XL_CFG_DURATION, .def = "2s",
     .offset = MLOFF(flush_timeout), .min = 10, .max = 3600000,
     .desc = "an unfinished record is shipped after this long without new data"},
    {NULL},
};

const struct xl_cfg_key xl_tail_cfg_keys[] = {
    {.name = "name", .type = XL_CFG_STR, .offset = OFF(name),
     .desc = "required, unique: names the input in log records"},
    {.name = "paths", .type = XL_CFG_STRLIST, .offset = OFF(paths),
     .desc = "files and globs to follow (* ? [..] in any path component; no **)"},
    {.name = "exclude_paths", .type = XL_CFG_STRLIST, .offset = OFF(exclude_paths),
     .desc = "globs of files never read: matched against the whole path when they contain "
             "'/', else against the file name (e.g. '*.gz')"},
    {.name = "from", .type = XL_CFG_STR, .def = "end", .offset = OFF(from),
     .choices = "end|head",
     .desc = "where files present when the input first starts are read from; files that "
             "appear later are always read from the head"},
    {.name = "include", .type = XL_CFG_STRLIST, .offset = OFF(include),
     .desc = "ship only lines containing one of these: KEYWORD (bytes) or re:REGEX (PCRE2); "
             "empty: every line"},
    {.name = "exclude", .type = XL_CFG_STRLIST, .offset = OFF(exclude),
     .desc = "drop lines matching any of these (same syntax), checked before include"},
    {.name = "multiline", .type = XL_CFG_SECTION, .offset = OFF(multiline),
     .sub = multiline_keys, .desc = "join lines into records (stack traces)"},
    {.name = "max_line_bytes", .type = XL_CFG_SIZE, .def = "64KiB", .offset = OFF(max_line_bytes),
     .min = 16, .max = 16LL << 20,
     .desc = "longer lines are shipped in parts of this size"},
    {.name = "poll_interval", .type = XL_CFG_DURATION, .def = "1s", .offset = OFF(poll_interval),
     .min = 10, .max = 3600000,
     .desc = "rescan the globs and check open files this often (a safety net beside inotify, "
             "the only mechanism without it)"},
    {.name = "rotate_wait", .type = XL_CFG_DURATION, .def = "5s", .offset = OFF(rotate_wait),
     .min = 0, .max = 86400000,
     .desc = "a rotated-away or deleted file is watched this long after its last write before "
             "its unterminated last line is shipped and it is closed (once committed)"},
    {NULL},
};
