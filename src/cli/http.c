/* xluo: the client's side of the server's HTTP API. */
#include "http.h"

#include <string.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "fmt.h"

xl_rc xl_cli_url_start(struct xl_buf *url, const char *base, const char *path)
{
    size_t n = strlen(base);
    xl_rc rc;

    while (n > 0 && base[n - 1] == '/')
        n--;
    if (!strstr(base, "://") && (rc = xl_buf_adds(url, "http://")) != XL_OK)
        return rc;
    if ((rc = xl_buf_add(url, base, n)) != XL_OK)
        return rc;
    return xl_buf_adds(url, path);
}

xl_rc xl_cli_url_param(struct xl_buf *url, const char *key, const char *value)
{
    char *k = NULL, *v = NULL;
    xl_rc rc = XL_ENOMEM;

    if (!value)
        return XL_OK;
    /* libcurl >= 7.82 accepts a NULL handle here. */
    if (!(k = curl_easy_escape(NULL, key, 0)) || !(v = curl_easy_escape(NULL, value, 0)))
        goto out;
    rc = xl_buf_printf(url, "%c%s=%s", url->data && strchr(url->data, '?') ? '&' : '?', k, v);
out:
    curl_free(k);
    curl_free(v);
    return rc;
}

struct sink {
    struct xl_buf *body;
    bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    xl_rc rc = xl_buf_add(s->body, p, size * n);

    if (rc == XL_ETOOBIG)
        s->too_big = true;
    return rc == XL_OK ? size * n : 0;
}

/* The user's message for a transfer that failed with code. */
static xl_rc transfer_error(CURL *h, CURLcode code, const char *errbuf, const char *server,
                            int64_t timeout_ms, struct xl_err *err)
{
    long os_errno = 0;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(code);

    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    if (code == CURLE_COULDNT_CONNECT && os_errno)
        why = strerror((int)os_errno); /* "Connection refused" */
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return xl_err_set(err, XL_ETIMEOUT,
                          "the server at %s did not answer within %.3gs (raise --timeout)", server,
                          (double)timeout_ms / 1000);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        xl_err_set(err, XL_ECONN, "cannot reach the server at %s: %s (set --server or XLUO_SERVER)",
                   server, why);
        if (err)
            err->sys_errno = (int)os_errno;
        return XL_ECONN;
    default:
        return xl_err_set(err, XL_ECONN, "the connection to the server at %s failed: %s", server,
                          why);
    }
}

/* Append key=time for the value s of option opt (--from): a duration back
 * from now as written (the server resolves it), any other form of
 * xl_cli_time_parse as epoch ms. XL_EINVAL naming opt, XL_ENOMEM,
 * XL_ETOOBIG. */
static xl_rc url_time(struct xl_buf *url, const char *key, const char *opt, const char *s,
                      int64_t now_ms, struct xl_err *err)
{
    char num[32];
    int64_t ms;
    bool rel;
    xl_rc rc;

    if ((rc = xl_cli_time_parse(s, now_ms, &ms, &rel, err)) != XL_OK) {
        xl_err_prefix(err, "%s: ", opt);
        return rc;
    }
    if (rel)
        return xl_cli_url_param(url, key, s);
    snprintf(num, sizeof(num), "%lld", (long long)ms);
    return xl_cli_url_param(url, key, num);
}

xl_rc xl_cli_url_range(struct xl_buf *url, const char *from_key, const char *to_key,
                       const char *from, const char *to, int64_t now_ms, struct xl_err *err)
{
    xl_rc rc;

    if ((from && (rc = url_time(url, from_key, "--from", from, now_ms, err)) != XL_OK) ||
        (to && (rc = url_time(url, to_key, "--to", to, now_ms, err)) != XL_OK))
        return rc == XL_EINVAL ? rc
                               : xl_err_set(err, rc, "cannot build the URL: %s", xl_rc_str(rc));
    return XL_OK;
}

xl_rc xl_cli_http_get(const char *url, const char *server, const char *token, int64_t timeout_ms,
                      long *status, struct xl_buf *body, struct xl_err *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *tmp;
    struct sink sink = {body, false};
    char *auth = NULL;
    CURLcode code;
    CURL *h;
    xl_rc rc = XL_OK;

    if (!(h = curl_easy_init()))
        return xl_err_set(err, XL_ENOMEM, "cannot start a transfer (curl_easy_init)");
    if (!(tmp = curl_slist_append(hdrs, "Accept: application/json")))
        goto out_nomem;
    hdrs = tmp;
    if (token && *token) {
        if (!(auth = xl_asprintf("Authorization: Bearer %s", token)) ||
            !(tmp = curl_slist_append(hdrs, auth)))
            goto out_nomem;
        hdrs = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "xluo/" XL_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl decodes */
    if ((code = curl_easy_perform(h)) != CURLE_OK) {
        if (sink.too_big)
            rc = xl_err_set(err, XL_ETOOBIG, "the server's answer is larger than %u MiB",
                            XL_CLI_MAX_BODY >> 20);
        else if (code == CURLE_WRITE_ERROR)
            rc = xl_err_set(err, XL_ENOMEM, "out of memory reading the server's answer");
        else
            rc = transfer_error(h, code, errbuf, server, timeout_ms, err);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    goto out;
out_nomem:
    rc = xl_err_set(err, XL_ENOMEM, "out of memory");
out:
    if (auth) {
        memset(auth, 0, strlen(auth)); /* the token */
        xl_free(auth);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

/* A short, single-line excerpt of a body that is not the expected JSON. */
static void excerpt(const char *body, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 4 < outlen; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (n + 4 >= outlen && n >= 3)
        memcpy(out + n - 3, "...", 3);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
}

/* XL_* for an HTTP error status other than 401. */
static xl_rc status_rc(long status)
{
    if (status == 400)
        return XL_EINVAL;
    if (status == 404)
        return XL_ENOENT;
    return XL_EPROTO;
}

xl_rc xl_cli_decode(long status, const char *body, size_t len, json_t **root, struct xl_err *err)
{
    json_error_t jerr;
    json_t *doc;
    char snip[120];

    *root = NULL;
    if (status == 401)
        return xl_err_set(err, XL_EAUTH,
                          "the server rejected the token (set --token or XLUO_TOKEN)");
    doc = json_loadb(body ? body : "", len, 0, &jerr);
    if (status < 200 || status > 299) {
        const char *e = json_string_value(json_object_get(doc, "error"));
        const char *d = json_string_value(json_object_get(doc, "detail"));
        xl_rc rc = status_rc(status);

        if (e && d && *d)
            xl_err_set(err, rc, "%s: %s (HTTP %ld)", e, d, status);
        else if (e)
            xl_err_set(err, rc, "%s (HTTP %ld)", e, status);
        else {
            excerpt(body ? body : "", len, snip, sizeof(snip));
            xl_err_set(err, rc, "the server answered HTTP %ld%s%s", status, *snip ? ": " : "",
                       snip);
        }
        json_decref(doc);
        return rc;
    }
    if (!doc)
        return xl_err_set(err, XL_EPROTO, "the server sent malformed JSON: %s (line %d, column %d)",
                          jerr.text, jerr.line, jerr.column);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return xl_err_set(err, XL_EPROTO, "the server sent JSON that is not an object");
    }
    *root = doc;
    return XL_OK;
}
