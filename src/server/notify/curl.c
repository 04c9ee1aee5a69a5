/* xluo-server notify: what the libcurl channels (webhook, email) share. */
#include <curl/curl.h>

#include "notify_int.h"

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return atomic_load((const atomic_bool *)ud) ? 1 : 0;
}

void *xl_notify_curl_new(int64_t timeout_ms, char *errbuf, const atomic_bool *abort)
{
    CURL *h = curl_easy_init();

    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)abort);
    return h;
}

bool xl_notify_curl_failed(struct xl_notify_result *r, int code, const char *errbuf,
                           int64_t timeout_ms)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)code);

    if (code == CURLE_ABORTED_BY_CALLBACK)
        xl_notify_result_error(r, XL_NOTIFY_DROPPED, "aborted at shutdown");
    else if (code == CURLE_OPERATION_TIMEDOUT)
        xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "no answer within %lld ms",
                               (long long)timeout_ms);
    else if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL)
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "bad url: %s", why);
    else
        return false;
    return true;
}
