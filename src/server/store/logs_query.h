/* xluo-server: the log search text query (private to the log store and its
 * users in src/server).
 *
 * The user syntax (docs/api.md "Logs"): words (all must occur), "phrases",
 * AND, OR, NOT (upper case; lower case they are words), parentheses and
 * prefix* (a word or phrase followed by '*'). Matching is case-insensitive.
 * A query compiles into a small tree that can be
 *
 *   - written as an FTS5 MATCH expression in which every term is a quoted
 *     string, so no user text is ever read as FTS5 syntax (column filters,
 *     NEAR, ^) or as SQL (it is bound, never pasted);
 *   - evaluated in memory against one line (the live stream's filter), with
 *     the tokenizer's rules for ASCII: tokens are runs of letters and
 *     digits, folded to lower case; every byte >= 0x80 counts as a letter
 *     (FTS5's unicode61 also folds non-ASCII case and diacritics, which
 *     this does not).
 *
 * FTS5 has no unary NOT: `a NOT b` is fine, `NOT b` alone is "every line
 * without b". Such a query compiles with `negated` set and the FTS5
 * expression of b; the store then selects rows NOT IN the matches. A NOT
 * that has nothing to subtract from inside an OR, `a OR NOT b`, is refused. */
#ifndef XL_LOGS_QUERY_H
#define XL_LOGS_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/rc.h"

#define XL_LOGQ_MAX_LEN 4096 /* bytes of query text */
#define XL_LOGQ_MAX_TERMS 64 /* words and phrases */
#define XL_LOGQ_MAX_DEPTH 16 /* nested parentheses and NOTs */

struct xl_logq;

/* Compile text. XL_EINVAL with a message for the user (no prefix: "unterminated
 * quote at byte 7", "OR needs a term on both sides"), XL_ENOMEM. An empty
 * or blank text is an error ("nothing to search for"): callers treat "no
 * text" as NULL before compiling. Caller owns *out (xl_logq_free). */
xl_rc xl_logq_compile(const char *text, struct xl_logq **out, struct xl_err *err);
void xl_logq_free(struct xl_logq *q);

/* The FTS5 MATCH expression (borrowed, NUL-terminated, valid until free).
 * When *negated the query means "lines that do NOT match the expression". */
const char *xl_logq_fts(const struct xl_logq *q, bool *negated);

/* Does line (len bytes, need not be NUL-terminated) match? */
bool xl_logq_match(const struct xl_logq *q, const char *line, size_t len);

#endif
