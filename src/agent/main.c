/* xluo-agent: entry point. */
#include "agent.h"
#include "config.h"

static xl_rc load(const char *path, const char *prefix, void **cfg, struct xl_err *err)
{
    return xl_agent_cfg_load(path, prefix, (struct xl_agent_cfg **)cfg, err);
}

static void free_cfg(void *cfg)
{
    xl_agent_cfg_free(cfg);
}

static void doc(FILE *out)
{
    fprintf(out, "# conf/agent.yaml: every key with its default\n");
    xl_cfg_doc(xl_agent_cfg_keys, out, 0);
}

int main(int argc, char **argv)
{
    static const struct xl_daemon_def def = {
        .name = "xluo-agent",
        .conf_name = "agent.yaml",
        .summary = "the xluo agent: collects host metrics and ships them to xluo-server",
        .load = load,
        .free_cfg = free_cfg,
        .doc = doc,
        .run = xl_agent_run,
    };
    return xl_daemon_main(&def, argc, argv);
}
