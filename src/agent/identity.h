/* xluo-agent: who this agent is: a stable id, a batch sequence that only
 * grows across restarts, the host name and the local IP. */
#ifndef XL_IDENTITY_H
#define XL_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc.h"

/* Read data_dir/agent-id, or create it (32 hex chars from getrandom,
 * written to a temp file, fsynced and renamed). out holds 33 bytes. */
xl_rc xl_identity_agent_id(const char *data_dir, char out[33], struct xl_err *err);

/* Batch sequence numbers that never repeat, even after kill -9: numbers are
 * reserved in blocks whose end is written (fsynced) to data_dir/agent-seq
 * before any of them is used; a restart continues after the last block. */
struct xl_seq {
    char *path;
    uint64_t next;
    uint64_t reserved_end;
};
xl_rc xl_seq_open(struct xl_seq *s, const char *data_dir, struct xl_err *err);
xl_rc xl_seq_next(struct xl_seq *s, uint64_t *out, struct xl_err *err);
void xl_seq_close(struct xl_seq *s);

/* The source address the kernel picks to reach host:port (UDP connect +
 * getsockname; no packet is sent), else the first non-loopback IPv4 of an
 * interface that is up, else "127.0.0.1". Never fails. */
void xl_identity_local_ip(const char *server_url, char *out, size_t outlen);

/* Host name from gethostname(2). */
void xl_identity_hostname(char *out, size_t outlen);

/* Host part and port of an http(s) URL ("http://h:1/x" → "h", "1"). */
xl_rc xl_url_hostport(const char *url, char *host, size_t hostlen, char *port, size_t portlen);

#endif
