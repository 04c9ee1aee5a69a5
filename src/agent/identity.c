/* xluo-agent: agent id, sequence numbers, host name and local IP. */
#include "identity.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdbool.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fileio.h"

#define SEQ_BLOCK 4096

xl_rc xl_identity_agent_id(const char *data_dir, char out[33], struct xl_err *err)
{
    char path[4096], buf[64];
    unsigned char rnd[16];
    xl_rc rc;
    size_t i;

    snprintf(path, sizeof(path), "%s/agent-id", data_dir);
    rc = xl_file_read_small(path, buf, sizeof(buf), 1, err);
    if (rc == XL_OK) {
        for (i = 0; buf[i]; i++)
            if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
                break;
        if (i != 32 || buf[i])
            return xl_err_set(err, XL_EPARSE,
                              "%s: expected 32 lowercase hex characters; remove the file to "
                              "get a new id",
                              path);
        memcpy(out, buf, 33);
        return XL_OK;
    }
    if (rc != XL_ENOENT)
        return rc;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return xl_err_sys(err, XL_EIO, errno, "getrandom");
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    snprintf(buf, sizeof(buf), "%s\n", out);
    return xl_file_write_atomic(path, buf, strlen(buf), 0644, err);
}

static xl_rc seq_reserve(struct xl_seq *s, struct xl_err *err)
{
    char buf[32];

    s->reserved_end = s->next + SEQ_BLOCK;
    snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)s->reserved_end);
    return xl_file_write_atomic(s->path, buf, strlen(buf), 0644, err);
}

xl_rc xl_seq_open(struct xl_seq *s, const char *data_dir, struct xl_err *err)
{
    char buf[64], *end;
    xl_rc rc;

    memset(s, 0, sizeof(*s));
    if (!(s->path = xl_asprintf("%s/agent-seq", data_dir)))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    rc = xl_file_read_small(s->path, buf, sizeof(buf), 1, err);
    if (rc == XL_OK) {
        errno = 0;
        s->next = strtoull(buf, &end, 10);
        if (errno || *end || end == buf)
            return xl_err_set(err, XL_EPARSE, "%s: expected a number", s->path);
    } else if (rc == XL_ENOENT) {
        s->next = 1;
    } else {
        return rc;
    }
    return seq_reserve(s, err);
}

xl_rc xl_seq_next(struct xl_seq *s, uint64_t *out, struct xl_err *err)
{
    xl_rc rc;

    if (s->next >= s->reserved_end && (rc = seq_reserve(s, err)) != XL_OK)
        return rc;
    *out = s->next++;
    return XL_OK;
}

void xl_seq_close(struct xl_seq *s)
{
    xl_free(s->path);
    s->path = NULL;
}

xl_rc xl_url_hostport(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *p = strstr(url, "://"), *end, *colon;
    bool tls;
    size_t n;

    if (!p)
        return XL_EINVAL;
    tls = strncmp(url, "https", 5) == 0;
    p += 3;
    end = p + strcspn(p, "/?#");
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return XL_EINVAL;
        n = (size_t)(rb - p - 1);
        if (n >= hostlen)
            return XL_EINVAL;
        memcpy(host, p + 1, n);
        host[n] = '\0';
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
        if (n == 0 || n >= hostlen)
            return XL_EINVAL;
        memcpy(host, p, n);
        host[n] = '\0';
    }
    if (colon) {
        n = (size_t)(end - colon - 1);
        if (n == 0 || n >= portlen)
            return XL_EINVAL;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
    } else {
        snprintf(port, portlen, "%s", tls ? "443" : "80");
    }
    return XL_OK;
}

static bool ip_by_route(const char *url, char *out, size_t outlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256], port[16];
    bool ok = false;
    int fd;

    if (xl_url_hostport(url, host, sizeof(host), port, sizeof(port)) != XL_OK ||
        getaddrinfo(host, port, &hints, &ai) != 0)
        return false;
    if ((fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            ok = getnameinfo((struct sockaddr *)&ss, sl, out, (socklen_t)outlen, NULL, 0,
                             NI_NUMERICHOST) == 0;
        close(fd);
    }
    freeaddrinfo(ai);
    return ok;
}

static bool ip_by_interface(char *out, size_t outlen)
{
    struct ifaddrs *ifs, *i;
    bool ok = false;

    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !ok; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        ok = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
                       (socklen_t)outlen) != NULL;
    }
    freeifaddrs(ifs);
    return ok;
}

void xl_identity_local_ip(const char *server_url, char *out, size_t outlen)
{
    if (server_url && ip_by_route(server_url, out, outlen))
        return;
    if (ip_by_interface(out, outlen))
        return;
    snprintf(out, outlen, "127.0.0.1");
}

void xl_identity_hostname(char *out, size_t outlen)
{
    if (gethostname(out, outlen) < 0 || !*out)
        snprintf(out, outlen, "localhost");
    out[outlen - 1] = '\0';
}
