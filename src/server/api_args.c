/* xluo-server: query parameters shared by the API routes (server.h). */
#include <errno.h>
#include <stdlib.h>

#include "common/units.h"
#include "server.h"

bool xl_api_time_param(struct xl_http_req *req, struct xl_http_resp *resp, const char *name,
                       int64_t now_ms, int64_t *out)
{
    const char *p = xl_http_arg(req, name);

    if (p && xl_time_arg_parse(p, now_ms, out) != XL_OK) {
        xl_http_error(resp, 400, "bad parameter",
                      "%s=%.64s: expected ms since the epoch or a duration ago like 1h", name, p);
        return false;
    }
    return true;
}

bool xl_api_count_param(struct xl_http_req *req, struct xl_http_resp *resp, const char *name,
                        long long max, long long *out)
{
    const char *p = xl_http_arg(req, name);
    char *end;
    long long v;

    if (!p)
        return true;
    errno = 0;
    v = strtoll(p, &end, 10);
    if (!*p || *end || errno || v < 1 || v > max) {
        xl_http_error(resp, 400, "bad parameter", "%s=%.64s: expected 1 to %lld", name, p, max);
        return false;
    }
    *out = v;
    return true;
}
