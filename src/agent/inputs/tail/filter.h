/* xluo-agent tail input: line filters.
 *
 * An entry is a keyword (the line contains it, byte for byte) or, written
 * "re:REGEX", a PCRE2 regular expression (JIT-compiled, matched on bytes;
 * start it with (*UTF) for UTF-8 semantics, (?i) for any case). A line is
 * kept when no exclude entry matches and, if there are include entries, at
 * least one of them does; the include entries that matched are reported by
 * their text as written. No allocation per line. */
#ifndef XL_TAIL_FILTER_H
#define XL_TAIL_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/rc.h"

struct xl_tail_filter;

/* Compile include and exclude (either may be NULL or empty). where prefixes
 * messages: "inputs.tail[1]" gives "inputs.tail[1].include[2]: re:foo(:
 * missing closing parenthesis at offset 4". XL_EINVAL for an empty entry or
 * a bad regex, XL_ENOMEM. The caller frees *out with xl_tail_filter_free. */
xl_rc xl_tail_filter_new(const struct xl_strlist *include, const struct xl_strlist *exclude,
                         const char *where, struct xl_tail_filter **out, struct xl_err *err);
void xl_tail_filter_free(struct xl_tail_filter *f);

/* True when the filter keeps every line (no entries): callers skip it. */
bool xl_tail_filter_passes_all(const struct xl_tail_filter *f);

/* Decide one line: true to ship it. *matched (borrowed from f, valid until
 * the next call) lists the include entries that matched; *nmatched is 0
 * when there are no include entries. */
bool xl_tail_filter_line(struct xl_tail_filter *f, const char *data, size_t len,
                         const char *const **matched, size_t *nmatched);

/* The same decision for lines of one buffer handed in file order: call
 * xl_tail_filter_begin with the buffer, then xl_tail_filter_line_in for
 * lines inside it at increasing addresses. Keyword searches then run over
 * the buffer once per occurrence instead of once per line. */
void xl_tail_filter_begin(struct xl_tail_filter *f, const char *buf, size_t len);
bool xl_tail_filter_line_in(struct xl_tail_filter *f, const char *data, size_t len,
                            const char *const **matched, size_t *nmatched);

/* Regex matches that failed (match limit, bad UTF-8 under (*UTF)): those
 * entries counted as not matching. */
uint64_t xl_tail_filter_errors(const struct xl_tail_filter *f);

#endif
