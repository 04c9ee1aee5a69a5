/* xluo: aligned text tables for the command-line client.
 *
 * Cells are added left to right, rows wrap after ncols cells; the first row
 * is the header. Printing computes each column's width, separates columns by
 * two spaces and never leaves trailing spaces. Widths count UTF-8 code
 * points (no East Asian wide characters). Control characters in cells are
 * shown as '?' so that data from the server cannot drive the terminal. */
#ifndef XL_TABLE_H
#define XL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/rc.h"

struct xl_table;

/* A table of ncols columns (at least 1), or NULL when out of memory. */
struct xl_table *xl_table_new(size_t ncols);

/* Free the table and its cells; NULL is fine. */
void xl_table_free(struct xl_table *t);

/* Right-align column col (numbers); the default is left. */
void xl_table_align_right(struct xl_table *t, size_t col);

/* Append one cell (copied; NULL is an empty cell). XL_ENOMEM. */
xl_rc xl_table_add(struct xl_table *t, const char *s);

/* Append the n cells (a row, or the header) one after the other.
 * XL_ENOMEM. */
xl_rc xl_table_add_row(struct xl_table *t, const char *const *cells, size_t n);

/* Append one printf-formatted cell. XL_ENOMEM. */
xl_rc xl_table_addf(struct xl_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Number of rows so far, the header and a partial last row included. */
size_t xl_table_rows(const struct xl_table *t);

/* Print the table on out; a partial last row is padded with empty cells.
 * XL_EIO when out reports an error. */
xl_rc xl_table_print(const struct xl_table *t, FILE *out);

/* Display width of s: its UTF-8 code points. */
size_t xl_table_width(const char *s);

#endif
