/* xluo-server: the stored seqs of one agent (see seqset.h). */
#include "seqset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void xl_seqset_init(struct xl_seqset *s)
{
    memset(s, 0, sizeof(*s));
}

void xl_seqset_cleanup(struct xl_seqset *s)
{
    xl_free(s->runs);
    xl_free(s->busy);
    memset(s, 0, sizeof(*s));
}

void xl_seqset_move(struct xl_seqset *to, struct xl_seqset *from)
{
    if (to == from)
        return;
    xl_seqset_cleanup(to);
    *to = *from;
    memset(from, 0, sizeof(*from));
}

/* The lowest seq that can be above the floor: seq 0 is never tracked, so a
 * floor of 0 is a floor of 1. */
static uint64_t low(const struct xl_seqset *s)
{
    return s->floor ? s->floor : 1;
}

/* Index of the first run whose hi >= seq (nruns when none). */
static size_t run_at(const struct xl_seqset *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nruns;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->runs[mid].hi < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void runs_remove(struct xl_seqset *s, size_t i, size_t n)
{
    if (!n)
        return; /* runs may be NULL */
    memmove(&s->runs[i], &s->runs[i + n], (s->nruns - i - n) * sizeof(*s->runs));
    s->nruns -= n;
}

/* Fold the runs that reach down to the floor into it. */
static void fold(struct xl_seqset *s)
{
    size_t n = 0;

    while (n < s->nruns && s->runs[n].lo <= low(s)) {
        if (s->runs[n].hi >= s->floor)
            s->floor = s->runs[n].hi + 1;
        n++;
    }
    if (n)
        runs_remove(s, 0, n);
}

static bool is_busy(const struct xl_seqset *s, uint64_t seq, size_t *at)
{
    for (size_t i = 0; i < s->nbusy; i++) {
        if (s->busy[i] == seq) {
            if (at)
                *at = i;
            return true;
        }
    }
    return false;
}

enum xl_seq_state xl_seqset_state(const struct xl_seqset *s, uint64_t seq)
{
    size_t i;

    if (seq == 0)
        return XL_SEQ_NEW;
    if (seq < s->floor)
        return XL_SEQ_DONE;
    i = run_at(s, seq);
    if (i < s->nruns && s->runs[i].lo <= seq)
        return XL_SEQ_DONE;
    return is_busy(s, seq, NULL) ? XL_SEQ_BUSY : XL_SEQ_NEW;
}

bool xl_seqset_raise_floor(struct xl_seqset *s, uint64_t floor)
{
    size_t i;

    if (floor <= s->floor)
        return false;
    s->floor = floor;
    /* Runs wholly below the new floor go; one that straddles it is cut. */
    i = run_at(s, floor);
    runs_remove(s, 0, i);
    fold(s);
    return true;
}

xl_rc xl_seqset_begin(struct xl_seqset *s, uint64_t seq, enum xl_seq_state *state)
{
    *state = xl_seqset_state(s, seq);
    if (*state != XL_SEQ_NEW || seq == 0)
        return XL_OK;
    if (s->nbusy == XL_SEQSET_MAX_BUSY)
        return XL_EFULL;
    if (xl_grow((void **)&s->busy, &s->cap_busy, s->nbusy + 1, sizeof(*s->busy)) < 0)
        return XL_ENOMEM;
    s->busy[s->nbusy++] = seq;
    return XL_OK;
}

bool xl_seqset_end(struct xl_seqset *s, uint64_t seq, bool stored)
{
    bool changed = false;
    size_t i;

    if (is_busy(s, seq, &i))
        s->busy[i] = s->busy[--s->nbusy];
    if (stored)
        xl_seqset_add(s, seq, &changed);
    return changed;
}

xl_rc xl_seqset_add(struct xl_seqset *s, uint64_t seq, bool *changed)
{
    size_t i;
    bool join_prev, join_next;

    *changed = false;
    if (seq == 0 || seq < s->floor)
        return XL_OK;
    if (seq == low(s)) { /* the common case, in order: no run needed */
        s->floor = seq + 1;
        fold(s);
        *changed = true;
        return XL_OK;
    }
    i = run_at(s, seq);
    if (i < s->nruns && s->runs[i].lo <= seq)
        return XL_OK;
    /* runs[i] (if any) is the first run above seq; runs[i-1] the one below. */
    join_prev = i > 0 && s->runs[i - 1].hi + 1 == seq;
    join_next = i < s->nruns && s->runs[i].lo == seq + 1;
    if (join_prev && join_next) {
        s->runs[i - 1].hi = s->runs[i].hi;
        runs_remove(s, i, 1);
    } else if (join_prev) {
        s->runs[i - 1].hi = seq;
    } else if (join_next) {
        s->runs[i].lo = seq;
    } else {
        if (xl_grow((void **)&s->runs, &s->cap_runs, s->nruns + 1, sizeof(*s->runs)) < 0)
            return XL_ENOMEM;
        memmove(&s->runs[i + 1], &s->runs[i], (s->nruns - i) * sizeof(*s->runs));
        s->runs[i] = (struct xl_seq_run){seq, seq};
        s->nruns++;
    }
    *changed = true;
    fold(s);
    /* Bounded: forget the lowest run (possibly the one just made). */
    if (s->nruns > XL_SEQSET_MAX_RUNS)
        runs_remove(s, 0, s->nruns - XL_SEQSET_MAX_RUNS);
    return XL_OK;
}

xl_rc xl_seqset_format(const struct xl_seqset *s, struct xl_buf *out)
{
    xl_rc rc;

    for (size_t i = 0; i < s->nruns; i++)
        if ((rc = xl_buf_printf(out, "%s%" PRIu64 "-%" PRIu64, i ? "," : "", s->runs[i].lo,
                                s->runs[i].hi)) != XL_OK)
            return rc;
    return XL_OK;
}

/* A decimal uint64 at *p (advanced); false if there is none or it overflows. */
static bool read_u64(const char **p, uint64_t *out)
{
    char *end;

    if (**p < '0' || **p > '9')
        return false;
    errno = 0;
    *out = strtoull(*p, &end, 10);
    if (errno)
        return false;
    *p = end;
    return true;
}

xl_rc xl_seqset_load(struct xl_seqset *s, uint64_t floor, const char *text, struct xl_err *err)
{
    const char *p = text;
    uint64_t lo, hi;
    bool changed;
    xl_rc rc;

    xl_seqset_cleanup(s);
    s->floor = floor;
    while (*p) {
        if (p != text && *p++ != ',')
            goto bad;
        if (!read_u64(&p, &lo) || *p++ != '-' || !read_u64(&p, &hi) || hi < lo || hi == UINT64_MAX)
            goto bad;
        /* Runs written by xl_seqset_format are sorted and apart: one add
         * per end keeps loading cheap and checks nothing overlaps. */
        if (s->nruns && lo <= s->runs[s->nruns - 1].hi + 1)
            goto bad;
        if (hi < low(s))
            continue;
        if (lo < low(s))
            lo = low(s);
        if ((rc = xl_seqset_add(s, lo, &changed)) != XL_OK)
            goto fail;
        if (hi > lo) {
            /* extend the run just made (or folded into the floor) to hi */
            if (s->nruns && s->runs[s->nruns - 1].lo == lo)
                s->runs[s->nruns - 1].hi = hi;
            else if (s->floor == lo + 1)
                s->floor = hi + 1;
        }
    }
    return XL_OK;
bad:
    rc = xl_err_set(err, XL_EPARSE, "seq runs: byte %zu: expected lo-hi[,lo-hi]... ascending",
                    (size_t)(p - text));
fail:
    xl_seqset_cleanup(s);
    if (rc == XL_ENOMEM)
        xl_err_set(err, XL_ENOMEM, "out of memory");
    return rc;
}
