/* xluo-agent: https:// for httpc.c through libcurl's multi interface on the
 * agent's libuv loop. libcurl (and with it OpenSSL and the rest of its
 * dependency tree) is loaded with dlopen at the first https:// request and
 * called only through a table of function pointers, so an agent that speaks
 * plain HTTP never maps it. */
#ifndef XL_HTTPC_CURL_H
#define XL_HTTPC_CURL_H

#include "httpc.h"

/* Load libcurl if it is not loaded yet and make a multi handle on c's loop.
 * XL_ENOENT ("https needs libcurl4 ...") when the library is missing. The
 * caller owns *out and releases it with xl_httpc_curl_free. */
xl_rc xl_httpc_curl_new(struct xl_httpc *c, struct xl_httpc_curl **out, struct xl_err *err);

/* Start one request; same contract as xl_httpc_request. */
xl_rc xl_httpc_curl_request(struct xl_httpc_curl *h, const char *method, const char *url,
                            const char *token, const char *encoding, const char *body,
                            size_t len, long timeout_ms,
                            xl_httpc_cb cb, void *ctx, struct xl_err *err);

/* Abort the requests in flight (each callback runs once with "client
 * closed") and release everything; the memory goes when the loop has run
 * the close callbacks. NULL is fine. */
void xl_httpc_curl_free(struct xl_httpc_curl *h);

/* Test hook: load this file name instead of libcurl's (before the first
 * https:// request of the process; it is loaded only once). */
void xl_httpc_curl_set_lib(const char *name);

#endif
