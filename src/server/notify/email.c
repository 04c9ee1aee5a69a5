/* xluo-server: email channels. One SMTP transaction per attempt with
 * libcurl (smtp:// with optional STARTTLS, or smtps://), a plain-text mail
 * built from the alerts. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/daemon.h"
#include "common/units.h"
#include "notify_int.h"

#define MAIL_MAX (4 * 1024 * 1024)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static xl_rc base64(struct xl_buf *b, const unsigned char *p, size_t n)
{
    xl_rc rc = XL_OK;

    for (size_t i = 0; i < n && rc == XL_OK; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        rc = xl_buf_add(b, q, 4);
    }
    return rc;
}

/* A header value: as is when printable ASCII, else RFC 2047 encoded. */
static xl_rc header_value(struct xl_buf *b, const char *s)
{
    xl_rc rc;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80 || *p < 0x20) {
            if ((rc = xl_buf_adds(b, "=?UTF-8?B?")) != XL_OK ||
                (rc = base64(b, (const unsigned char *)s, strlen(s))) != XL_OK)
                return rc;
            return xl_buf_adds(b, "?=");
        }
    }
    return xl_buf_adds(b, s);
}

/* The address for the envelope: inside <...> when written "Name <a@b>". */
static char *envelope(const char *addr)
{
    const char *lt = strchr(addr, '<'), *gt = lt ? strchr(lt, '>') : NULL;

    if (lt && gt)
        return xl_asprintf("%.*s", (int)(gt - lt + 1), lt);
    return xl_asprintf("<%s>", addr);
}

/* RFC 5322 date, independent of the locale. */
static void mail_date(char *out, size_t cap)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The whole mail: headers, a blank line, the text with CRLF line ends. */
static xl_rc build_mail(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                        struct xl_buf *mail)
{
    struct xl_buf subj, text;
    char date[64];
    xl_rc rc;

    xl_buf_init(&subj, 4096);
    xl_buf_init(&text, MAIL_MAX);
    mail_date(date, sizeof(date));
    if ((rc = xl_notify_render_subject(m, &subj)) != XL_OK ||
        (rc = xl_notify_render_text(ch, m, &text)) != XL_OK)
        goto out;
    if ((rc = xl_buf_printf(mail, "Date: %s\r\nFrom: %s\r\nTo: ", date, ch->from)) != XL_OK)
        goto out;
    for (size_t i = 0; i < ch->to.n; i++)
        if ((rc = xl_buf_printf(mail, "%s%s", i ? ", " : "", ch->to.v[i])) != XL_OK)
            goto out;
    if ((rc = xl_buf_adds(mail, "\r\nSubject: ")) != XL_OK ||
        (rc = header_value(mail, subj.data)) != XL_OK ||
        (rc = xl_buf_printf(mail,
                            "\r\nMessage-ID: <xluo.%" PRIu64 ".%lld@%s>\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Transfer-Encoding: 8bit\r\n"
                            "X-Mailer: xluo-server/" XL_VERSION "\r\n\r\n",
                            m->id, (long long)xl_now_ms(), "xluo")) != XL_OK)
        goto out;
    for (size_t i = 0; i < text.len && rc == XL_OK; i++)
        rc =
            text.data[i] == '\n' ? xl_buf_add(mail, "\r\n", 2) : xl_buf_add(mail, &text.data[i], 1);
out:
    xl_buf_cleanup(&subj);
    xl_buf_cleanup(&text);
    return rc;
}

struct reader {
    const char *p;
    size_t left;
};

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    struct reader *rd = ud;
    size_t k = size * n < rd->left ? size * n : rd->left;

    memcpy(dst, rd->p, k);
    rd->p += k;
    rd->left -= k;
    return k;
}

void xl_notify_email_deliver(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                             const atomic_bool *abort, struct xl_notify_result *r)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *rcpt = NULL, *tmp;
    struct xl_buf mail;
    struct reader rd;
    char *from = NULL;
    CURLcode code;
    long reply = 0;
    CURL *h = NULL;
    xl_rc rc;

    xl_buf_init(&mail, MAIL_MAX);
    if ((rc = build_mail(ch, m, &mail)) != XL_OK) {
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "cannot build the mail: %s", xl_rc_str(rc));
        goto out;
    }
    if (!(h = xl_notify_curl_new(ch->timeout, errbuf, abort)) || !(from = envelope(ch->from)))
        goto out_nomem;
    for (size_t i = 0; i < ch->to.n; i++) {
        char *to = envelope(ch->to.v[i]);

        tmp = to ? curl_slist_append(rcpt, to) : NULL;
        xl_free(to);
        if (!tmp)
            goto out_nomem;
        rcpt = tmp;
    }
    rd = (struct reader){mail.data, mail.len};
    curl_easy_setopt(h, CURLOPT_URL, ch->smtp);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &rd);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)mail.len);
    if (ch->starttls)
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (ch->username && *ch->username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, ch->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, ch->password ? ch->password : "");
        if (ch->auth && !strcmp(ch->auth, "plain"))
            curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=PLAIN");
        else if (ch->auth && !strcmp(ch->auth, "login"))
            curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=LOGIN");
    }
    code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
    r->status = (int)reply;
    if (code == CURLE_OK) {
        r->outcome = XL_NOTIFY_OK;
    } else if (!xl_notify_curl_failed(r, code, errbuf, ch->timeout)) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(code);

        /* SMTP 5xx replies and refused logins are permanent. */
        if (code == CURLE_LOGIN_DENIED || code == CURLE_USE_SSL_FAILED ||
            (reply >= 500 && reply <= 599))
            xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "%s", why);
        else
            xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "%s", why);
    }
    goto out;
out_nomem:
    xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "out of memory");
out:
    xl_free(from);
    curl_slist_free_all(rcpt);
    if (h)
        curl_easy_cleanup(h);
    xl_buf_cleanup(&mail);
}
