/* xluo-server: notification bodies. The generic JSON (Alertmanager's
 * webhook shape), the chat vendors' incoming-webhook messages (Slack,
 * DingTalk, WeCom, Feishu), and the plain text of a mail. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/alloc.h"
#include "notify.h"

/* WeCom refuses markdown content longer than this (bytes). */
#define WECOM_MAX 4096

enum style {
    ST_PLAIN,    /* mail, Feishu text */
    ST_SLACK,    /* Slack mrkdwn in an attachment */
    ST_DINGTALK, /* DingTalk markdown */
    ST_WECOM,    /* WeCom markdown */
    ST_LARK,     /* Feishu card lark_md */
};

/* RFC 3339 in UTC; with_ms adds milliseconds. 0 is Alertmanager's zero
 * time, "0001-01-01T00:00:00Z". */
static void fmt_time(int64_t ms, bool with_ms, char *out, size_t cap)
{
    struct tm tm;
    time_t t;
    int64_t frac;

    if (ms <= 0) {
        snprintf(out, cap, "0001-01-01T00:00:00Z");
        return;
    }
    t = (time_t)(ms / 1000);
    frac = ms % 1000;
    gmtime_r(&t, &tm);
    if (with_ms)
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    else
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool visible(const struct xl_notify_channel_cfg *ch, const struct xl_notify_alert *a)
{
    return a->status == XL_NOTIFY_FIRING || ch->send_resolved;
}

/* What a message says in its title: firing when any visible alert is. */
struct summary {
    size_t shown, total, firing;
    const char *name; /* the common rule name, else the group key */
    bool is_firing;
};

static void summarize(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                      struct summary *s)
{
    const char *rule = NULL;
    bool same = true;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < m->n_alerts; i++) {
        const struct xl_notify_alert *a = &m->alerts[i];

        if (!visible(ch, a))
            continue;
        s->total++;
        if (a->status == XL_NOTIFY_FIRING)
            s->firing++;
        if (!rule)
            rule = a->rule;
        else if (!a->rule || strcmp(rule, a->rule) != 0)
            same = false;
    }
    s->shown = s->total < (size_t)ch->max_alerts ? s->total : (size_t)ch->max_alerts;
    s->is_firing = s->firing > 0;
    s->name = same && rule ? rule : m->group_key && *m->group_key ? m->group_key : "alerts";
}

static xl_rc title(const struct summary *s, struct xl_buf *out)
{
    return xl_buf_printf(out, "[%s:%zu] %s", s->is_firing ? "FIRING" : "RESOLVED",
                         s->is_firing ? s->firing : s->total, s->name);
}

/* ---- the generic JSON ---- */

/* A JSON string of s; bytes that are not UTF-8 become '?' rather than
 * losing the value (jansson refuses invalid UTF-8). */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j || !s || !(copy = xl_strdup(s)))
        return j;
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    xl_free(copy);
    return j;
}

static int jset(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v);
}

/* An alert's labels as written: alertname and severity first (unless the
 * labels carry their own), then the labels in order. */
static json_t *labels_json(const struct xl_notify_alert *a)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    if (a->rule && !xl_notify_kv_get(&a->labels, "alertname"))
        jset(o, "alertname", jstr(a->rule));
    if (a->severity && !xl_notify_kv_get(&a->labels, "severity"))
        jset(o, "severity", jstr(a->severity));
    for (size_t i = 0; i < a->labels.n; i++)
        jset(o, a->labels.k[i], jstr(a->labels.v[i]));
    return o;
}

static json_t *kv_json(const struct xl_kvlist *l)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < l->n; i++)
        jset(o, l->k[i], jstr(l->v[i]));
    return o;
}

/* The pairs of objs[0] that every other object has with the same value. */
static json_t *common_json(json_t **objs, size_t n)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;

    if (!o || !n)
        return o;
    json_object_foreach(objs[0], k, v)
    {
        bool all = true;

        for (size_t i = 1; i < n && all; i++) {
            json_t *w = json_object_get(objs[i], k);
            all = w && json_equal(v, w);
        }
        if (all)
            jset(o, k, json_incref(v));
    }
    return o;
}

static xl_rc dump(json_t *root, struct xl_buf *out)
{
    char *s;
    xl_rc rc;

    if (!root)
        return XL_ENOMEM;
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        return XL_ENOMEM;
    rc = xl_buf_adds(out, s);
    free(s);
    return rc;
}

xl_rc xl_notify_render_generic(const struct xl_notify_channel_cfg *ch,
                               const struct xl_notify_msg *m, struct xl_buf *out)
{
    struct summary s;
    json_t *root = json_object(), *alerts = json_array();
    json_t **labs = NULL, **anns = NULL;
    size_t n = 0;
    char ts[40], fp[17];
    xl_rc rc = XL_ENOMEM;

    summarize(ch, m, &s);
    if (!root || !alerts)
        goto out;
    if (s.shown && (!(labs = xl_calloc(s.shown, sizeof(*labs))) ||
                    !(anns = xl_calloc(s.shown, sizeof(*anns)))))
        goto out;
    for (size_t i = 0; i < m->n_alerts && n < s.shown; i++) {
        const struct xl_notify_alert *a = &m->alerts[i];
        json_t *ja = json_object();

        if (!visible(ch, a))
            continue;
        if (!ja || json_array_append_new(alerts, ja) != 0)
            goto out;
        labs[n] = labels_json(a);
        anns[n] = kv_json(&a->annotations);
        if (!labs[n] || !anns[n])
            goto out;
        jset(ja, "status", jstr(a->status == XL_NOTIFY_FIRING ? "firing" : "resolved"));
        jset(ja, "labels", json_incref(labs[n]));
        jset(ja, "annotations", json_incref(anns[n]));
        fmt_time(a->starts_at, true, ts, sizeof(ts));
        jset(ja, "startsAt", jstr(ts));
        fmt_time(a->status == XL_NOTIFY_RESOLVED ? a->ends_at : 0, true, ts, sizeof(ts));
        jset(ja, "endsAt", jstr(ts));
        jset(ja, "generatorURL", jstr(a->generator_url ? a->generator_url : ""));
        snprintf(fp, sizeof(fp), "%016" PRIx64, a->fingerprint);
        jset(ja, "fingerprint", jstr(fp));
        jset(ja, "value", isfinite(a->value) ? json_real(a->value) : json_null());
        n++;
    }
    jset(root, "version", jstr("1"));
    jset(root, "groupKey", jstr(m->group_key ? m->group_key : ""));
    jset(root, "truncatedAlerts", json_integer((json_int_t)(s.total - s.shown)));
    jset(root, "status", jstr(s.is_firing ? "firing" : "resolved"));
    jset(root, "receiver", jstr(ch->name ? ch->name : ""));
    jset(root, "groupLabels", kv_json(&m->group_labels));
    jset(root, "commonLabels", common_json(labs, n));
    jset(root, "commonAnnotations", common_json(anns, n));
    jset(root, "alerts", alerts);
    alerts = NULL;
    rc = dump(root, out);
    root = NULL;
out:
    for (size_t i = 0; labs && i < s.shown; i++) {
        json_decref(labs[i]);
        json_decref(anns[i]);
    }
    xl_free(labs);
    xl_free(anns);
    json_decref(alerts);
    json_decref(root);
    return rc;
}

/* ---- text and markdown ---- */

/* Slack wants &, < and > escaped in message text. */
static xl_rc add_text(struct xl_buf *b, enum style st, const char *s)
{
    xl_rc rc = XL_OK;

    if (st != ST_SLACK)
        return xl_buf_adds(b, s);
    for (; *s && rc == XL_OK; s++) {
        if (*s == '&')
            rc = xl_buf_adds(b, "&amp;");
        else if (*s == '<')
            rc = xl_buf_adds(b, "&lt;");
        else if (*s == '>')
            rc = xl_buf_adds(b, "&gt;");
        else
            rc = xl_buf_add(b, s, 1);
    }
    return rc;
}

/* One "name: value" line of an alert in style st. */
static xl_rc field(struct xl_buf *b, enum style st, const char *name, const char *value)
{
    static const char *const pre[] = {
        [ST_PLAIN] = "  ", [ST_SLACK] = "*", [ST_DINGTALK] = "- ",
        [ST_WECOM] = "> ", [ST_LARK] = "",
    };
    xl_rc rc;

    if ((rc = xl_buf_printf(b, "%s%s%s ", pre[st], name, st == ST_SLACK ? ":*" : ":")) != XL_OK ||
        (rc = add_text(b, st, value)) != XL_OK)
        return rc;
    return xl_buf_adds(b, "\n");
}

/* The heading of an alert (not for Slack, where it is the attachment's
 * title). */
static xl_rc alert_head(struct xl_buf *b, enum style st, const struct xl_notify_alert *a)
{
    const char *state = a->status == XL_NOTIFY_FIRING ? "FIRING" : "RESOLVED";
    const char *rule = a->rule ? a->rule : "";
    const char *sev = a->severity;

    switch (st) {
    case ST_DINGTALK:
        return sev ? xl_buf_printf(b, "#### [%s] %s (%s)\n", state, rule, sev)
                   : xl_buf_printf(b, "#### [%s] %s\n", state, rule);
    case ST_WECOM:
        return xl_buf_printf(b, "**%s** <font color=\"%s\">%s</font>%s%s\n", rule,
                             a->status == XL_NOTIFY_FIRING ? "warning" : "info", state,
                             sev ? " " : "", sev ? sev : "");
    case ST_LARK:
        return sev ? xl_buf_printf(b, "**[%s] %s** (%s)\n", state, rule, sev)
                   : xl_buf_printf(b, "**[%s] %s**\n", state, rule);
    default:
        return sev ? xl_buf_printf(b, "[%s] %s (%s)\n", state, rule, sev)
                   : xl_buf_printf(b, "[%s] %s\n", state, rule);
    }
}

/* The lines of one alert: annotations, value, labels, times, source. */
static xl_rc alert_body(struct xl_buf *b, enum style st, const struct xl_notify_alert *a)
{
    char tmp[64];
    struct xl_buf lab;
    xl_rc rc = XL_OK;

    for (size_t i = 0; i < a->annotations.n && rc == XL_OK; i++)
        rc = field(b, st, a->annotations.k[i], a->annotations.v[i]);
    if (rc == XL_OK && isfinite(a->value)) {
        snprintf(tmp, sizeof(tmp), "%.10g", a->value);
        rc = field(b, st, "value", tmp);
    }
    if (rc == XL_OK && a->labels.n) {
        xl_buf_init(&lab, 64 * 1024);
        for (size_t i = 0; i < a->labels.n && rc == XL_OK; i++)
            rc = xl_buf_printf(&lab, "%s%s=%s", i ? ", " : "", a->labels.k[i], a->labels.v[i]);
        if (rc == XL_OK)
            rc = field(b, st, "labels", lab.data);
        xl_buf_cleanup(&lab);
    }
    if (rc == XL_OK) {
        fmt_time(a->starts_at, false, tmp, sizeof(tmp));
        rc = field(b, st, "started", tmp);
    }
    if (rc == XL_OK && a->status == XL_NOTIFY_RESOLVED) {
        fmt_time(a->ends_at, false, tmp, sizeof(tmp));
        rc = field(b, st, "ended", tmp);
    }
    if (rc == XL_OK && a->generator_url && *a->generator_url)
        rc = field(b, st, "source", a->generator_url);
    return rc;
}

/* The whole message as text in style st (not Slack): each shown alert,
 * separated by a blank line, then how many were left out. */
static xl_rc alerts_text(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                         enum style st, const struct summary *s, struct xl_buf *b)
{
    size_t n = 0;
    xl_rc rc = XL_OK;

    for (size_t i = 0; i < m->n_alerts && n < s->shown && rc == XL_OK; i++) {
        const struct xl_notify_alert *a = &m->alerts[i];

        if (!visible(ch, a))
            continue;
        if (n++ && (rc = xl_buf_adds(b, "\n")) != XL_OK)
            break;
        if ((rc = alert_head(b, st, a)) == XL_OK)
            rc = alert_body(b, st, a);
    }
    if (rc == XL_OK && s->total > s->shown)
        rc = xl_buf_printf(b, "\n... and %zu more\n", s->total - s->shown);
    return rc;
}

xl_rc xl_notify_render_subject(const struct xl_notify_msg *m, struct xl_buf *out)
{
    static const struct xl_notify_channel_cfg all = {.max_alerts = 1, .send_resolved = true};
    struct summary s;

    summarize(&all, m, &s);
    return title(&s, out);
}

xl_rc xl_notify_render_text(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            struct xl_buf *out)
{
    struct summary s;
    xl_rc rc;

    summarize(ch, m, &s);
    if ((rc = title(&s, out)) != XL_OK || (rc = xl_buf_adds(out, "\n\n")) != XL_OK)
        return rc;
    return alerts_text(ch, m, ST_PLAIN, &s, out);
}

/* ---- the vendors ---- */

static const char *slack_color(const struct xl_notify_alert *a)
{
    const char *sev = a->severity ? a->severity : "";

    if (a->status == XL_NOTIFY_RESOLVED)
        return "good";
    if (!strcmp(sev, "critical") || !strcmp(sev, "error") || !strcmp(sev, "page"))
        return "danger";
    if (!strcmp(sev, "warning"))
        return "warning";
    return "#439FE0";
}

/* Slack incoming webhook: {"text", "attachments": [{color, title,
 * title_link, text, fallback, ts}]}, one attachment per alert. */
static xl_rc render_slack(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                          struct xl_buf *out)
{
    struct summary s;
    struct xl_buf t;
    json_t *root = json_object(), *atts = json_array();
    size_t n = 0;
    xl_rc rc = XL_ENOMEM;

    xl_buf_init(&t, 256 * 1024);
    summarize(ch, m, &s);
    if (!root || !atts)
        goto out;
    if ((rc = title(&s, &t)) != XL_OK ||
        (s.total > s.shown &&
         (rc = xl_buf_printf(&t, " (%zu more not shown)", s.total - s.shown)) != XL_OK))
        goto out;
    jset(root, "text", jstr(t.data));
    for (size_t i = 0; i < m->n_alerts && n < s.shown; i++) {
        const struct xl_notify_alert *a = &m->alerts[i];
        json_t *att;

        if (!visible(ch, a))
            continue;
        n++;
        rc = XL_ENOMEM;
        if (!(att = json_object()) || json_array_append_new(atts, att) != 0)
            goto out;
        xl_buf_reset(&t);
        if ((rc = alert_head(&t, ST_PLAIN, a)) != XL_OK)
            goto out;
        t.data[--t.len] = '\0'; /* the newline */
        jset(att, "color", jstr(slack_color(a)));
        jset(att, "title", jstr(t.data));
        if (a->generator_url && *a->generator_url)
            jset(att, "title_link", jstr(a->generator_url));
        jset(att, "fallback", jstr(t.data));
        xl_buf_reset(&t);
        if ((rc = alert_body(&t, ST_SLACK, a)) != XL_OK)
            goto out;
        if (t.len)
            t.data[--t.len] = '\0';
        jset(att, "text", jstr(t.data ? t.data : ""));
        jset(att, "ts", json_integer(a->starts_at / 1000));
    }
    jset(root, "attachments", atts);
    atts = NULL;
    rc = dump(root, out);
    root = NULL;
out:
    xl_buf_cleanup(&t);
    json_decref(atts);
    json_decref(root);
    return rc;
}

/* Cut s at most max bytes, not inside a UTF-8 sequence. */
static void utf8_cut(struct xl_buf *b, size_t max)
{
    size_t n = max;

    if (b->len <= max)
        return;
    while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
        n--;
    b->len = n;
    b->data[n] = '\0';
}

/* DingTalk: {"msgtype":"markdown","markdown":{"title","text"}}; WeCom:
 * {"msgtype":"markdown","markdown":{"content"}} (at most 4096 bytes);
 * Feishu: {"msg_type":"text","content":{"text"}} or an interactive card. */
static xl_rc render_chat(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                         enum style st, struct xl_buf *out)
{
    struct summary s;
    struct xl_buf head, text;
    json_t *root = NULL, *inner = NULL;
    xl_rc rc;

    xl_buf_init(&head, 4096);
    xl_buf_init(&text, 1024 * 1024);
    summarize(ch, m, &s);
    if ((rc = title(&s, &head)) != XL_OK)
        goto out;
    if (st == ST_DINGTALK || st == ST_WECOM)
        rc = xl_buf_printf(&text, "### %s\n\n", head.data);
    else if (st == ST_PLAIN)
        rc = xl_buf_printf(&text, "%s\n\n", head.data);
    if (rc != XL_OK || (rc = alerts_text(ch, m, st, &s, &text)) != XL_OK)
        goto out;
    if (st == ST_WECOM)
        utf8_cut(&text, WECOM_MAX);
    rc = XL_ENOMEM;
    if (!(root = json_object()) || !(inner = json_object()))
        goto out;
    switch (st) {
    case ST_DINGTALK:
        jset(root, "msgtype", jstr("markdown"));
        jset(inner, "title", jstr(head.data));
        jset(inner, "text", jstr(text.data));
        jset(root, "markdown", inner);
        break;
    case ST_WECOM:
        jset(root, "msgtype", jstr("markdown"));
        jset(inner, "content", jstr(text.data));
        jset(root, "markdown", inner);
        break;
    case ST_PLAIN:
        jset(root, "msg_type", jstr("text"));
        jset(inner, "text", jstr(text.data));
        jset(root, "content", inner);
        break;
    default: { /* ST_LARK: the interactive card */
        const char *tmpl = "green";
        json_t *hdr = json_object(), *ttl = json_object(), *els = json_array(),
               *div = json_object(), *txt = json_object(), *cfg = json_object();

        if (s.is_firing) {
            const char *sev = NULL;
            for (size_t i = 0; i < m->n_alerts && !sev; i++)
                if (m->alerts[i].status == XL_NOTIFY_FIRING)
                    sev = m->alerts[i].severity;
            tmpl = sev && !strcmp(sev, "critical")  ? "red"
                   : sev && !strcmp(sev, "warning") ? "orange"
                                                    : "blue";
        }
        jset(root, "msg_type", jstr("interactive"));
        jset(cfg, "wide_screen_mode", json_true());
        jset(inner, "config", cfg);
        jset(ttl, "tag", jstr("plain_text"));
        jset(ttl, "content", jstr(head.data));
        jset(hdr, "title", ttl);
        jset(hdr, "template", jstr(tmpl));
        jset(inner, "header", hdr);
        jset(txt, "tag", jstr("lark_md"));
        jset(txt, "content", jstr(text.data));
        jset(div, "tag", jstr("div"));
        jset(div, "text", txt);
        json_array_append_new(els, div);
        jset(inner, "elements", els);
        jset(root, "card", inner);
    }
    }
    inner = NULL;
    rc = dump(root, out);
    root = NULL;
out:
    json_decref(inner);
    json_decref(root);
    xl_buf_cleanup(&head);
    xl_buf_cleanup(&text);
    return rc;
}

xl_rc xl_notify_render_body(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            struct xl_buf *out)
{
    const char *f = ch->format ? ch->format : "generic";

    if (!strcmp(f, "slack"))
        return render_slack(ch, m, out);
    if (!strcmp(f, "dingtalk"))
        return render_chat(ch, m, ST_DINGTALK, out);
    if (!strcmp(f, "wecom"))
        return render_chat(ch, m, ST_WECOM, out);
    if (!strcmp(f, "feishu"))
        return render_chat(ch, m, ST_PLAIN, out);
    if (!strcmp(f, "feishu_card"))
        return render_chat(ch, m, ST_LARK, out);
    return xl_notify_render_generic(ch, m, out);
}
