/* xluo: aligned text tables for the command-line client. */
#include "table.h"

#include <stdarg.h>
#include <string.h>

#include "common/alloc.h"

struct xl_table {
    size_t ncols;
    bool *right;  /* ncols flags */
    char **cells; /* row-major */
    size_t ncells;
    size_t cap;
};

struct xl_table *xl_table_new(size_t ncols)
{
    struct xl_table *t;

    if (ncols == 0)
        ncols = 1;
    if (!(t = xl_calloc(1, sizeof(*t))))
        return NULL;
    if (!(t->right = xl_calloc(ncols, sizeof(*t->right)))) {
        xl_free(t);
        return NULL;
    }
    t->ncols = ncols;
    return t;
}

void xl_table_free(struct xl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncells; i++)
        xl_free(t->cells[i]);
    xl_free(t->cells);
    xl_free(t->right);
    xl_free(t);
}

void xl_table_align_right(struct xl_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

/* Take ownership of s (heap, may be NULL on allocation failure) as the next
 * cell, replacing control characters. */
static xl_rc add_owned(struct xl_table *t, char *s)
{
    if (!s)
        return XL_ENOMEM;
    if (xl_grow((void **)&t->cells, &t->cap, t->ncells + 1, sizeof(*t->cells)) != 0) {
        xl_free(s);
        return XL_ENOMEM;
    }
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    t->cells[t->ncells++] = s;
    return XL_OK;
}

xl_rc xl_table_add(struct xl_table *t, const char *s)
{
    return add_owned(t, xl_strdup(s ? s : ""));
}

xl_rc xl_table_add_row(struct xl_table *t, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (xl_table_add(t, cells[i]) != XL_OK)
            return XL_ENOMEM;
    return XL_OK;
}

xl_rc xl_table_addf(struct xl_table *t, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return XL_EINVAL;
    if (!(s = xl_malloc((size_t)n + 1)))
        return XL_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return add_owned(t, s);
}

size_t xl_table_rows(const struct xl_table *t)
{
    return (t->ncells + t->ncols - 1) / t->ncols;
}

size_t xl_table_width(const char *s)
{
    size_t w = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

/* The cell at row r, column c; "" past the last cell. */
static const char *cell(const struct xl_table *t, size_t r, size_t c)
{
    size_t i = r * t->ncols + c;

    return i < t->ncells ? t->cells[i] : "";
}

static void pad(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

xl_rc xl_table_print(const struct xl_table *t, FILE *out)
{
    size_t rows = xl_table_rows(t);
    size_t *width;
    xl_rc rc = XL_OK;

    if (!(width = xl_calloc(t->ncols, sizeof(*width))))
        return XL_ENOMEM;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = xl_table_width(cell(t, r, c));
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < rows; r++) {
        size_t last = 0; /* one past the last non-empty cell */

        for (size_t c = 0; c < t->ncols; c++)
            if (*cell(t, r, c))
                last = c + 1;
        for (size_t c = 0; c < last; c++) {
            const char *s = cell(t, r, c);
            size_t fill = width[c] - xl_table_width(s);

            if (c > 0)
                fputs("  ", out);
            if (t->right[c])
                pad(out, fill);
            fputs(s, out);
            if (!t->right[c] && c + 1 < last)
                pad(out, fill);
        }
        fputc('\n', out);
    }
    if (ferror(out))
        rc = XL_EIO;
    xl_free(width);
    return rc;
}
