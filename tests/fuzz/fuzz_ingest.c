/* libFuzzer target: the server's batch decoder must never crash, leak or
 * read out of bounds, whatever the body. `make fuzz` runs it. */
#include <stddef.h>
#include <stdint.h>

#include "server/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct xl_ingest_limits lim = {
        .max_records = 1000, .max_age_ms = 86400000LL * 365 * 60, .max_skew_ms = 86400000LL * 365 * 60};
    struct xl_ingest_batch b;
    struct xl_err err;

    if (xl_ingest_decode((const char *)data, size, &lim, 1763715000000LL, &b, &err) == XL_OK)
        xl_ingest_batch_cleanup(&b);
    return 0;
}
