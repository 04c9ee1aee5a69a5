/* TEMPORARY STUB, replaced by the live stream (issue 3). */
#include "live.h"

#include "common/alloc.h"
#include "server.h"

struct xl_live {
    int unused;
};

xl_rc xl_live_new(struct xl_live **out, struct xl_err *err)
{
    *out = xl_calloc(1, sizeof(**out));
    return *out ? XL_OK : xl_err_set(err, XL_ENOMEM, "out of memory");
}

void xl_live_free(struct xl_live *lv)
{
    xl_free(lv);
}

void xl_live_publish(struct xl_live *lv, const struct xl_log_row *rows, size_t n)
{
}

uint64_t xl_live_subscribers(struct xl_live *lv)
{
    return 0;
}

uint64_t xl_live_dropped(struct xl_live *lv)
{
    return 0;
}

void xl_api_logs_stream(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    xl_http_error(resp, 501, "not implemented", "live stream is being built");
}
