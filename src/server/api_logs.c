/* TEMPORARY STUB, replaced by the log search API (issue 3). */
#include "server.h"

void xl_api_logs_search(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    xl_http_error(resp, 501, "not implemented", "log search is being built");
}

void xl_api_logs_histogram(void *app, struct xl_http_req *req, struct xl_http_resp *resp)
{
    xl_http_error(resp, 501, "not implemented", "log histogram is being built");
}
