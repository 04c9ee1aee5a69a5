/* xluo-server: entry point. */
#include "common/daemon.h"
#include "server.h"

static xl_rc load(const char *path, const char *prefix, void **cfg, struct xl_err *err)
{
    return xl_server_cfg_load(path, prefix, (struct xl_server_cfg **)cfg, err);
}

static void free_cfg(void *cfg)
{
    xl_server_cfg_free(cfg);
}

static void doc(FILE *out)
{
    fprintf(out, "# conf/server.yaml: every key with its default\n");
    xl_cfg_doc(xl_server_cfg_keys, out, 0);
}

int main(int argc, char **argv)
{
    static const struct xl_daemon_def def = {
        .name = "xluo-server",
        .conf_name = "server.yaml",
        .summary = "the xluo server: ingest, store, agent registry and API (port 21002)",
        .load = load,
        .free_cfg = free_cfg,
        .doc = doc,
        .run = xl_server_run,
    };
    return xl_daemon_main(&def, argc, argv);
}
