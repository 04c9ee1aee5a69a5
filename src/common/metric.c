/* xluo: Prometheus name rules. */
#include "metric.h"

#include <math.h>
#include <string.h>

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

json_t *xl_json_from_number(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "+Inf" : "-Inf");
    return json_real(v);
}

bool xl_json_number(const json_t *v, double *out)
{
    const char *s;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Inf") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}
