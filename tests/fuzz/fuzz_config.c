/* libFuzzer target: the YAML config loader, with the real agent and server
 * key tables. Any input gives XL_OK or a message; never a crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xl_agent_cfg a = {0};
    struct xl_server_cfg s = {0};
    struct xl_err err;

    xl_cfg_load_buf(xl_agent_cfg_keys, &a, "fuzz.yaml", (const char *)data, size, &err);
    xl_cfg_cleanup(xl_agent_cfg_keys, &a);
    xl_cfg_load_buf(xl_server_cfg_keys, &s, "fuzz.yaml", (const char *)data, size, &err);
    xl_cfg_cleanup(xl_server_cfg_keys, &s);
    return 0;
}
