/* xluo: Prometheus name rules. */
#include "metric.h"

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

bool xl_metric_name_valid(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!name_char(*p, p == s, true))
            return false;
    return true;
}

bool xl_label_name_valid(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!name_char(*p, p == s, false))
            return false;
    return true;
}
