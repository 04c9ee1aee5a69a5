/* xluo: check states and event types (see check.h). */
#include "check.h"

#include <stddef.h>
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
