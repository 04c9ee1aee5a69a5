/* xluo: the client's side of the server's HTTP API: URLs, one GET, and the
 * translation of what came back (status, JSON) into an xl_rc and a message
 * for the user. */
#ifndef XL_CLI_HTTP_H
#define XL_CLI_HTTP_H

#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/rc.h"

/* Largest answer the client reads, and longest URL it builds. */
#define XL_CLI_MAX_BODY (64u << 20)
#define XL_CLI_MAX_URL (64u << 10)

/* Start url (empty, initialised with xl_buf_init) as base + path. A base
 * without "scheme://" gets "http://"; trailing slashes of the base are
 * dropped, so "http://h:1/" + "/api/v1/agents" has one slash.
 * XL_ENOMEM, XL_ETOOBIG. */
xl_rc xl_cli_url_start(struct xl_buf *url, const char *base, const char *path);

/* Append "?key=value" or "&key=value", both percent-encoded
 * (curl_easy_escape). A NULL value appends nothing. XL_ENOMEM, XL_ETOOBIG. */
xl_rc xl_cli_url_param(struct xl_buf *url, const char *key, const char *value);

/* Append from_key= for --from and to_key= for --to (each when not NULL):
 * a duration back from now as written (the server resolves it), any other
 * form of xl_cli_time_parse as epoch ms. XL_EINVAL naming the option;
 * XL_ENOMEM, XL_ETOOBIG with "cannot build the URL". */
xl_rc xl_cli_url_range(struct xl_buf *url, const char *from_key, const char *to_key,
                       const char *from, const char *to, int64_t now_ms, struct xl_err *err);

/* GET url with "Authorization: Bearer token" (unless token is NULL or
 * empty) within timeout_ms (0: none). Fills *status and body (initialised).
 * Errors, with the message for the user: XL_ECONN (cannot reach server,
 * named by `server`), XL_ETIMEOUT, XL_ETOOBIG, XL_ENOMEM. */
xl_rc xl_cli_http_get(const char *url, const char *server, const char *token, int64_t timeout_ms,
                      long *status, struct xl_buf *body, struct xl_err *err);

/* Turn an answer into a JSON document (*root, caller owns) or an error:
 * 2xx with a JSON object -> XL_OK; 401 -> XL_EAUTH; other statuses ->
 * the server's "error: detail (HTTP n)" as XL_EINVAL (400), XL_ENOENT (404)
 * or XL_EPROTO; a 2xx that is not a JSON object -> XL_EPROTO. */
xl_rc xl_cli_decode(long status, const char *body, size_t len, json_t **root, struct xl_err *err);

#endif
