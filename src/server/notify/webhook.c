/* xluo-server: webhook channels. One POST per attempt with libcurl; the
 * body is the generic JSON or a chat vendor's message (render.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/daemon.h"
#include "notify_int.h"

#define BODY_MAX (8 * 1024 * 1024)

void xl_notify_result_error(struct xl_notify_result *r, enum xl_notify_outcome outcome,
                            const char *fmt, ...)
{
    va_list ap;

    r->outcome = outcome;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* The first SNIPPET_MAX bytes of the response are kept, the rest read and
 * dropped (the attempt's timeout bounds how long that may take). */
struct sink {
    struct xl_notify_result *r;
    size_t seen;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n, room = sizeof(s->r->snippet) - s->r->snippet_len;

    memcpy(s->r->snippet + s->r->snippet_len, p, len < room ? len : room);
    s->r->snippet_len += len < room ? len : room;
    s->seen += len;
    return len;
}

/* Chat vendors answer 200 with an error code in the body: DingTalk and
 * WeCom {"errcode": N, "errmsg"}, Feishu {"code": N, "msg"} (older hooks
 * {"StatusCode": N}). Their rate-limit codes are transient: DingTalk 130101
 * (sending too fast), WeCom 45009 (API frequency), Feishu 11232. */
static void vendor_check(const struct xl_notify_channel_cfg *ch, struct xl_notify_result *r)
{
    const char *f = ch->format ? ch->format : "generic";
    json_t *root, *code = NULL, *msg = NULL;
    json_int_t c;

    if (!strcmp(f, "generic") || !strcmp(f, "slack"))
        return;
    if (!(root = json_loadb(r->snippet, r->snippet_len, 0, NULL)))
        return; /* not JSON (or longer than the snippet): trust the status */
    if (!strcmp(f, "dingtalk") || !strcmp(f, "wecom")) {
        code = json_object_get(root, "errcode");
        msg = json_object_get(root, "errmsg");
    } else {
        if (!(code = json_object_get(root, "code")))
            code = json_object_get(root, "StatusCode");
        if (!(msg = json_object_get(root, "msg")))
            msg = json_object_get(root, "StatusMessage");
    }
    if (json_is_integer(code) && (c = json_integer_value(code)) != 0) {
        bool rate = c == 130101 || c == 45009 || c == 11232;
        xl_notify_result_error(r, rate ? XL_NOTIFY_TRANSIENT : XL_NOTIFY_PERMANENT,
                               "%s answered error %lld: %s", f, (long long)c,
                               json_is_string(msg) ? json_string_value(msg) : "");
    }
    json_decref(root);
}

void xl_notify_webhook_deliver(const struct xl_notify_channel_cfg *ch,
                               const struct xl_notify_msg *m, const atomic_bool *abort,
                               struct xl_notify_result *r)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *tmp;
    struct sink sink = {r, 0};
    struct xl_buf body;
    curl_off_t retry_after = 0;
    CURLcode code;
    long status = 0;
    CURL *h = NULL;
    xl_rc rc;

    xl_buf_init(&body, BODY_MAX);
    if ((rc = xl_notify_render_body(ch, m, &body)) != XL_OK) {
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "cannot build the body: %s", xl_rc_str(rc));
        goto out;
    }
    if (!(h = xl_notify_curl_new(ch->timeout, errbuf, abort)) ||
        !(hdrs = curl_slist_append(NULL, "Content-Type: application/json")))
        goto out_nomem;
    for (size_t i = 0; i < ch->headers.n; i++) {
        char *line = xl_asprintf("%s: %s", ch->headers.k[i], ch->headers.v[i]);

        tmp = line ? curl_slist_append(hdrs, line) : NULL;
        xl_free(line);
        if (!tmp)
            goto out_nomem;
        hdrs = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, ch->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "xluo-server/" XL_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    if (code != CURLE_OK) {
        if (!xl_notify_curl_failed(r, code, errbuf, ch->timeout))
            xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "%s",
                                   errbuf[0] ? errbuf : curl_easy_strerror(code));
        goto out;
    }
    if (status == 429 || status == 408 || status >= 500) {
        if (status == 429 && curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
            r->retry_after_ms = (int64_t)retry_after * 1000;
        xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "HTTP %ld", status);
    } else if (status < 200 || status > 299) {
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "HTTP %ld", status);
    } else {
        r->outcome = XL_NOTIFY_OK;
        vendor_check(ch, r);
    }
    goto out;
out_nomem:
    xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "out of memory");
out:
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    xl_buf_cleanup(&body);
}
