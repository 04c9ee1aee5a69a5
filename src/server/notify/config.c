/* xluo-server: the `notify:` configuration table and its checks. */
#include <stddef.h>
#include <string.h>

#include "notify.h"

#define COFF(f) offsetof(struct xl_notify_channel_cfg, f)
#define ROFF(f) offsetof(struct xl_notify_route_cfg, f)
#define NOFF(f) offsetof(struct xl_notify_cfg, f)

static bool set(const char *s)
{
    return s && *s;
}

/* Which keys belong to which type, for "key X is for type Y" messages. */
static xl_rc check_channel(const struct xl_notify_channel_cfg *c, size_t i, struct xl_err *err)
{
    const char *t = c->type;
    const char *stray = NULL;

    if (!set(c->name))
        return xl_err_set(err, XL_EINVAL, "channels[%zu]: 'name' is required", i);
    if (!set(t))
        return xl_err_set(err, XL_EINVAL, "channel '%s': 'type' is required (webhook|email|exec)",
                          c->name);
    if (strcmp(t, "webhook") == 0) {
        if (!set(c->url))
            return xl_err_set(err, XL_EINVAL, "channel '%s': a webhook needs 'url'", c->name);
        if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8))
            return xl_err_set(err, XL_EINVAL,
                              "channel '%s': url '%s' must start with http:// or https://",
                              c->name, c->url);
    } else if (c->url) {
        stray = "url";
    } else if (c->headers.n) {
        stray = "headers";
    }
    if (strcmp(t, "email") == 0) {
        if (!set(c->smtp))
            return xl_err_set(err, XL_EINVAL, "channel '%s': an email channel needs 'smtp'",
                              c->name);
        if (strncmp(c->smtp, "smtp://", 7) && strncmp(c->smtp, "smtps://", 8))
            return xl_err_set(err, XL_EINVAL,
                              "channel '%s': smtp '%s' must start with smtp:// or smtps://",
                              c->name, c->smtp);
        if (!set(c->from))
            return xl_err_set(err, XL_EINVAL, "channel '%s': an email channel needs 'from'",
                              c->name);
        if (!c->to.n)
            return xl_err_set(err, XL_EINVAL, "channel '%s': an email channel needs 'to'",
                              c->name);
        if (set(c->password) && !set(c->username))
            return xl_err_set(err, XL_EINVAL, "channel '%s': 'password' without 'username'",
                              c->name);
    } else if (!stray) {
        stray = c->smtp ? "smtp" : c->from ? "from" : c->to.n ? "to" : c->username ? "username"
                : c->password ? "password" : c->starttls ? "starttls" : NULL;
    }
    if (strcmp(t, "exec") == 0) {
        if (!c->command.n || !set(c->command.v[0]))
            return xl_err_set(err, XL_EINVAL,
                              "channel '%s': an exec channel needs 'command' (a list: [path, args...])",
                              c->name);
    } else if (!stray && c->command.n) {
        stray = "command";
    }
    if (stray)
        return xl_err_set(err, XL_EINVAL, "channel '%s': '%s' does not apply to type %s",
                          c->name, stray, t);
    if (c->backoff_max < c->backoff)
        return xl_err_set(err, XL_EINVAL, "channel '%s': backoff_max is shorter than backoff",
                          c->name);
    return XL_OK;
}

/* The loader calls this on the whole `channels` list: it reports the line
 * of the list, and the message names the item. */
static xl_rc check_channels(const void *field, struct xl_err *err)
{
    const struct xl_cfg_array *a = field;
    const struct xl_notify_channel_cfg *c = a->items;
    xl_rc rc;

    if (a->n > XL_NOTIFY_MAX_CHANNELS)
        return xl_err_set(err, XL_ERANGE, "at most %d channels", XL_NOTIFY_MAX_CHANNELS);
    for (size_t i = 0; i < a->n; i++) {
        if ((rc = check_channel(&c[i], i, err)) != XL_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c[i].name, c[j].name) == 0)
                return xl_err_set(err, XL_EINVAL, "channel name '%s' is used twice", c[i].name);
    }
    return XL_OK;
}

/* Matcher values: "v", "==v" (equal, for values that start with "!="),
 * "!=v". Regular expressions are not supported: "=~" and "!~" are refused
 * so that adding them later changes no meaning. */
static xl_rc check_match(const void *field, struct xl_err *err)
{
    const struct xl_kvlist *l = field;

    for (size_t i = 0; i < l->n; i++) {
        if (strncmp(l->v[i], "=~", 2) == 0 || strncmp(l->v[i], "!~", 2) == 0)
            return xl_err_set(err, XL_EINVAL,
                              "'%s: %s': regular expressions are not supported; use a value, "
                              "'==value' or '!=value'", l->k[i], l->v[i]);
        if (!*l->k[i])
            return xl_err_set(err, XL_EINVAL, "an empty label name");
    }
    return XL_OK;
}

static xl_rc check_route_channels(const void *field, struct xl_err *err)
{
    const struct xl_strlist *l = field;

    if (!l->n)
        return xl_err_set(err, XL_EINVAL, "a route needs at least one channel");
    return XL_OK;
}

static const struct xl_cfg_key channel_keys[] = {
    {.name = "name", .type = XL_CFG_STR, .offset = COFF(name),
     .desc = "the channel's name, as routes and reports call it"},
    {.name = "type", .type = XL_CFG_STR, .offset = COFF(type), .choices = "webhook|email|exec",
     .desc = "how it delivers"},
    {.name = "url", .type = XL_CFG_STR, .offset = COFF(url),
     .desc = "webhook: the URL to POST to (http:// or https://)"},
    {.name = "headers", .type = XL_CFG_MAP, .offset = COFF(headers),
     .desc = "webhook: extra request headers {Name: value}"},
    {.name = "format", .type = XL_CFG_STR, .def = "generic", .offset = COFF(format),
     .choices = "generic|slack|dingtalk|wecom|feishu|feishu_card",
     .desc = "webhook: the body: generic JSON or a chat vendor's incoming-webhook message"},
    {.name = "smtp", .type = XL_CFG_STR, .offset = COFF(smtp),
     .desc = "email: the server, smtp://host:port or smtps://host:port (TLS from the start)"},
    {.name = "starttls", .type = XL_CFG_BOOL, .def = "false", .offset = COFF(starttls),
     .desc = "email: require STARTTLS on smtp:// (fail when the server does not offer it)"},
    {.name = "auth", .type = XL_CFG_STR, .def = "any", .offset = COFF(auth),
     .choices = "any|plain|login",
     .desc = "email: the SASL mechanism when username is set (any: the best the server offers)"},
    {.name = "username", .type = XL_CFG_STR, .offset = COFF(username),
     .desc = "email: SMTP user; empty: no authentication"},
    {.name = "password", .type = XL_CFG_STR, .offset = COFF(password),
     .desc = "email: SMTP password"},
    {.name = "from", .type = XL_CFG_STR, .offset = COFF(from),
     .desc = "email: the sender address"},
    {.name = "to", .type = XL_CFG_STRLIST, .offset = COFF(to),
     .desc = "email: the recipient addresses"},
    {.name = "command", .type = XL_CFG_STRLIST, .offset = COFF(command),
     .desc = "exec: [program, args...] run without a shell; the notification as JSON on stdin"},
    {.name = "timeout", .type = XL_CFG_DURATION, .def = "10s", .offset = COFF(timeout),
     .min = 10, .max = 300000, .desc = "one attempt's time limit"},
    {.name = "max_attempts", .type = XL_CFG_INT, .def = "5", .offset = COFF(max_attempts),
     .min = 1, .max = 100, .desc = "attempts in all before a transient failure is final"},
    {.name = "backoff", .type = XL_CFG_DURATION, .def = "1s", .offset = COFF(backoff), .min = 1,
     .max = 3600000, .desc = "the wait before the second attempt; doubled after each"},
    {.name = "backoff_max", .type = XL_CFG_DURATION, .def = "5m", .offset = COFF(backoff_max),
     .min = 1, .max = 86400000, .desc = "the longest wait between attempts"},
    {.name = "max_alerts", .type = XL_CFG_INT, .def = "20", .offset = COFF(max_alerts), .min = 1,
     .max = 1000, .desc = "alerts written into one message; the rest are counted"},
    {.name = "send_resolved", .type = XL_CFG_BOOL, .def = "true", .offset = COFF(send_resolved),
     .desc = "also notify when alerts resolve"},
    {NULL},
};

static const struct xl_cfg_key route_keys[] = {
    {.name = "match", .type = XL_CFG_MAP, .offset = ROFF(match), .check = check_match,
     .desc = "label: value (equal), '!=value' (not equal), '==value'; all must hold; "
             "empty: every alert"},
    {.name = "channels", .type = XL_CFG_STRLIST, .offset = ROFF(channels),
     .check = check_route_channels, .desc = "the channels of a matching alert"},
    {.name = "continue", .type = XL_CFG_BOOL, .def = "false", .offset = ROFF(cont),
     .desc = "after a match, keep trying the routes below"},
    {NULL},
};

const struct xl_cfg_key xl_notify_cfg_keys[] = {
    {.name = "channels", .type = XL_CFG_LIST, .offset = NOFF(channels), .sub = channel_keys,
     .item_size = sizeof(struct xl_notify_channel_cfg), .check = check_channels,
     .desc = "where notifications go"},
    {.name = "routes", .type = XL_CFG_LIST, .offset = NOFF(routes), .sub = route_keys,
     .item_size = sizeof(struct xl_notify_route_cfg),
     .desc = "which channels an alert goes to, tried in order"},
    {.name = "queue_size", .type = XL_CFG_INT, .def = "1000", .offset = NOFF(queue_size),
     .min = 1, .max = 1000000, .desc = "deliveries waiting or retrying; beyond, new ones are refused"},
    {.name = "workers", .type = XL_CFG_INT, .def = "2", .offset = NOFF(workers), .min = 1,
     .max = 64, .desc = "deliveries in flight at once"},
    {.name = "drain_timeout", .type = XL_CFG_DURATION, .def = "5s", .offset = NOFF(drain_timeout),
     .min = 0, .max = 600000, .desc = "at shutdown, how long queued deliveries may still go out"},
    {NULL},
};

xl_rc xl_notify_cfg_check(const struct xl_notify_cfg *cfg, struct xl_err *err)
{
    const struct xl_notify_route_cfg *r = cfg->routes.items;
    xl_rc rc;

    if ((rc = check_channels(&cfg->channels, err)) != XL_OK) {
        xl_err_prefix(err, "notify.channels: ");
        return rc;
    }
    for (size_t i = 0; i < cfg->routes.n; i++) {
        if (!r[i].channels.n)
            return xl_err_set(err, XL_EINVAL, "notify.routes[%zu]: a route needs at least one channel",
                              i);
        for (size_t j = 0; j < r[i].channels.n; j++) {
            if (xl_notify_channel_find(cfg, r[i].channels.v[j]) < 0)
                return xl_err_set(err, XL_EINVAL, "notify.routes[%zu]: unknown channel '%s'", i,
                                  r[i].channels.v[j]);
        }
    }
    return XL_OK;
}
