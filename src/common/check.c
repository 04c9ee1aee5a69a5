/* xluo: check states and event types (see check.h). */
#include "check.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[XL_CHECK_STATES] = {"ok", "warning", "critical",
                                                         "unknown"};

const char *xl_check_state_str(enum xl_check_state s)
{
    return (unsigned)s < XL_CHECK_STATES ? state_names[s] : "unknown";
}

bool xl_check_state_parse(const char *s, enum xl_check_state *out)
{
    for (int i = 0; s && i < XL_CHECK_STATES; i++) {
        if (strcasecmp(s, state_names[i]) == 0) {
            *out = (enum xl_check_state)i;
            return true;
        }
    }
    return false;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;

    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return k;
}

/* A C0/C1 control character or DEL at p (k bytes long). */
static bool control(const unsigned char *p, size_t k)
{
    return (k == 1 && (p[0] < 0x20 || p[0] == 0x7f)) || (k == 2 && p[0] == 0xc2 && p[1] <= 0x9f);
}

bool xl_check_name_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t k;

    if (!s || len == 0 || len > XL_CHECK_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i += k)
        if (!(k = utf8_len(p + i, len - i)) || control(p + i, k))
            return false;
    return true;
}

void xl_text_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = s ? strlen(s) : 0, k;

    for (size_t i = 0; i < n; i += k) {
        k = utf8_len(p + i, n - i);
        if (k && control(p + i, k) && p[i] != '\n' && p[i] != '\t') {
            memset(p + i, '?', k);
        } else if (!k) {
            p[i] = '?';
            k = 1;
        }
    }
}

bool xl_event_type_reserved(const char *s)
{
    static const char *const reserved[] = {"metric", "log", "check", "event", "heartbeat",
                                           "job_run"};

    for (size_t k = 0; s && k < sizeof(reserved) / sizeof(reserved[0]); k++)
        if (strcasecmp(s, reserved[k]) == 0)
            return true;
    return false;
}

bool xl_event_type_valid(const char *s)
{
    size_t n;

    if (!s)
        return false;
    for (n = 0; s[n]; n++) {
        char c = s[n];

        if (n == XL_EVENT_TYPE_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return n > 0 && !xl_event_type_reserved(s);
}
