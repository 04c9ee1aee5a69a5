/* xluo-server: what the notify delivery and its channel types share. */
#ifndef XL_NOTIFY_INT_H
#define XL_NOTIFY_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify.h"

/* The result of one attempt, filled by a channel type. */
struct xl_notify_result {
    enum xl_notify_outcome outcome;
    int status;      /* HTTP status, SMTP reply, exit code; 0 none */
    char error[256]; /* what failed; "" when ok */
    char snippet[XL_NOTIFY_SNIPPET_MAX];
    size_t snippet_len;
    int64_t retry_after_ms; /* the peer asked to wait this long (429); 0 none */
};

/* One attempt of each channel type. abort turns true when the handle is
 * being freed and the drain time is over: stop at once (outcome DROPPED).
 * The result's outcome says what happened; nothing else is returned. */
void xl_notify_webhook_deliver(const struct xl_notify_channel_cfg *ch,
                               const struct xl_notify_msg *m, const atomic_bool *abort,
                               struct xl_notify_result *r);
void xl_notify_email_deliver(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                             const atomic_bool *abort, struct xl_notify_result *r);
void xl_notify_exec_deliver(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            const atomic_bool *abort, struct xl_notify_result *r);

/* A libcurl easy handle with what every libcurl channel sets: no signals,
 * the channel's timeout, errbuf (CURL_ERROR_SIZE) for messages, and a stop
 * as soon as abort turns true. NULL when out of memory. */
void *xl_notify_curl_new(int64_t timeout_ms, char *errbuf, const atomic_bool *abort);
/* Classify a failed transfer (a CURLcode) the way every libcurl channel
 * does: aborted at shutdown → DROPPED, timeout → TRANSIENT, bad URL →
 * PERMANENT. False when it is none of those: the channel decides. */
bool xl_notify_curl_failed(struct xl_notify_result *r, int code, const char *errbuf,
                           int64_t timeout_ms);

/* printf into r->error. */
void xl_notify_result_error(struct xl_notify_result *r, enum xl_notify_outcome outcome,
                            const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
