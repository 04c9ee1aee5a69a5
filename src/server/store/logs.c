/* TEMPORARY STUB, replaced by the log store implementation (issue 3). */
#include "logs.h"

#include "common/alloc.h"

struct xl_logstore {
    int unused;
};

xl_rc xl_logstore_open(const struct xl_logstore_opts *o, struct xl_logstore **out,
                       struct xl_err *err)
{
    *out = xl_calloc(1, sizeof(**out));
    return *out ? XL_OK : xl_err_set(err, XL_ENOMEM, "out of memory");
}

void xl_logstore_close(struct xl_logstore *ls)
{
    xl_free(ls);
}

xl_rc xl_logstore_append(struct xl_logstore *ls, const struct xl_log_rec *r, size_t n,
                         int64_t *ids, struct xl_err *err)
{
    return xl_err_set(err, XL_ESTATE, "log store not implemented yet");
}

xl_rc xl_logstore_search(struct xl_logstore *ls, const struct xl_log_query *q,
                         xl_log_row_cb cb, void *ctx, int64_t *next_cursor, struct xl_err *err)
{
    return xl_err_set(err, XL_ESTATE, "log store not implemented yet");
}

xl_rc xl_logstore_histogram(struct xl_logstore *ls, const struct xl_log_query *q,
                            int64_t step_ms, xl_log_bucket_cb cb, void *ctx, struct xl_err *err)
{
    return xl_err_set(err, XL_ESTATE, "log store not implemented yet");
}

void xl_logstore_get_stats(struct xl_logstore *ls, struct xl_logstore_stats *out)
{
    (void)ls;
    *out = (struct xl_logstore_stats){0};
}
