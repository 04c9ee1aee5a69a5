/* xluo-agent: the process: one libuv loop running the inputs and the
 * shipper. */
#ifndef XL_AGENT_H
#define XL_AGENT_H

#include "common/daemon.h"

/* Run until SIGTERM/SIGINT (the daemon's run callback). */
int xl_agent_run(void *cfg, const struct xl_daemon_opts *opts);

#endif
