/* xluo-agent tail input: the offsets file (see offsets.h). */
#include "offsets.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "fingerprint.h"

#define MAGIC "xluo-tail-offsets 1"
#define FILE_MAX (256u << 20)

void xl_tail_offsets_cleanup(struct xl_tail_offsets *o)
{
    for (size_t i = 0; i < o->n; i++) {
        xl_free(o->v[i].input);
        xl_free(o->v[i].path);
    }
    xl_free(o->v);
    for (size_t i = 0; i < o->inputs.n; i++)
        xl_free(o->inputs.v[i]);
    xl_free(o->inputs.v);
    memset(o, 0, sizeof(*o));
}

static bool needs_escape(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '%';
}

static xl_rc put_escaped(struct xl_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = {'%', 0, 0};
    const char *run = s;
    xl_rc rc = XL_OK;

    if (!*s)
        return xl_buf_add(b, "%00", 3); /* never empty: fields are space-separated */
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!needs_escape(c))
            continue;
        if ((rc = xl_buf_add(b, run, (size_t)(s - run))) != XL_OK)
            return rc;
        e[1] = hex[c >> 4];
        e[2] = hex[c & 15];
        if ((rc = xl_buf_add(b, e, 3)) != XL_OK)
            return rc;
        run = s + 1;
    }
    return xl_buf_add(b, run, (size_t)(s - run));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode a percent-escaped field into a new string; NULL on a bad escape
 * (*bad set) or out of memory. "%00" alone is the empty string. */
static char *unescape(const char *s, bool *bad)
{
    size_t n = strlen(s);
    char *out = xl_malloc(n + 1), *w = out;

    *bad = false;
    if (!out)
        return NULL;
    if (strcmp(s, "%00") == 0) {
        *out = 0;
        return out;
    }
    for (; *s; s++) {
        if (*s != '%') {
            *w++ = *s;
            continue;
        }
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            *bad = true;
            xl_free(out);
            return NULL;
        }
        *w++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *w = 0;
    return out;
}

static bool parse_u64(const char *s, int base, uint64_t *out)
{
    char *end;

    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Split line in place at spaces into at most max fields; returns the count
 * (max + 1 when there are more). */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (n == max)
            return max + 1;
        f[n++] = tok;
    }
    return n;
}

static xl_rc read_all(const char *path, char **out, size_t *len, struct xl_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    xl_rc rc = XL_OK;

    *out = NULL;
    if (fd < 0) {
        if (errno == ENOENT)
            return XL_ENOENT;
        return xl_err_sys(err, XL_EIO, errno, "%s: open", path);
    }
    if (fstat(fd, &st) < 0) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: fstat", path);
        goto out;
    }
    if ((uint64_t)st.st_size > FILE_MAX) {
        rc = xl_err_set(err, XL_ETOOBIG, "%s: %lld bytes: larger than %u bytes", path,
                        (long long)st.st_size, FILE_MAX);
        goto out;
    }
    if (!(buf = xl_malloc((size_t)st.st_size + 1))) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = xl_err_sys(err, XL_EIO, errno, "%s: read", path);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
out:
    xl_free(buf);
    close(fd);
    return rc;
}

static xl_rc push_entry(struct xl_tail_offsets *o, const struct xl_tail_offset *e)
{
    if (xl_grow((void **)&o->v, &o->cap, o->n + 1, sizeof(*o->v)) < 0)
        return XL_ENOMEM;
    o->v[o->n++] = *e;
    return XL_OK;
}

static xl_rc push_input(struct xl_tail_offsets *o, char *name)
{
    char **v = xl_realloc(o->inputs.v, (o->inputs.n + 1) * sizeof(*v));

    if (!v)
        return XL_ENOMEM;
    v[o->inputs.n++] = name;
    o->inputs.v = v;
    return XL_OK;
}

/* Parse one "file" line's fields (f[1..8]) into e (strings allocated). */
static const char *parse_file(char **f, struct xl_tail_offset *e)
{
    uint64_t fplen;
    bool bad = false;

    if (strlen(f[1]) != 16 || !parse_u64(f[1], 16, &e->uid) || e->uid == 0)
        return "file_uid: expected 16 hex digits, not zero";
    if (!parse_u64(f[2], 10, &e->dev))
        return "device: expected a decimal number";
    if (!parse_u64(f[3], 10, &e->ino))
        return "inode: expected a decimal number";
    if (strlen(f[4]) != 16 || !parse_u64(f[4], 16, &e->fp))
        return "fingerprint: expected 16 hex digits";
    if (!parse_u64(f[5], 10, &fplen) || fplen > XL_TAIL_FP_MAX)
        return "fingerprint bytes: expected 0 to 1024";
    e->fp_len = (uint32_t)fplen;
    if (!parse_u64(f[6], 10, &e->offset) || e->offset > (uint64_t)INT64_MAX)
        return "offset: expected a decimal number";
    if (!(e->input = unescape(f[7], &bad)))
        return bad ? "input: bad %-escape" : "out of memory";
    if (!(e->path = unescape(f[8], &bad))) {
        xl_free(e->input);
        e->input = NULL;
        return bad ? "path: bad %-escape" : "out of memory";
    }
    return NULL;
}

static xl_rc parse(const char *path, char *text, struct xl_tail_offsets *o, struct xl_err *err)
{
    char *line = text, *nl, *f[10];
    unsigned long lineno = 0;
    bool ended = false, first = true;
    uint64_t ni, nf;
    const char *what = NULL;
    size_t nfields;

    for (; *line; line = nl ? nl + 1 : line + strlen(line)) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        if (!nl && *line) {
            what = "truncated: the last line has no newline";
            goto bad;
        }
        if (first) {
            first = false;
            if (strcmp(line, MAGIC) != 0) {
                what = "not a tail offsets file (the first line is not '" MAGIC "')";
                goto bad;
            }
            continue;
        }
        if (*line == '#' || *line == 0)
            continue;
        if (ended) {
            what = "data after the end line";
            goto bad;
        }
        nfields = split(line, f, 9);
        if (nfields == 0)
            continue;
        if (strcmp(f[0], "input") == 0) {
            bool badesc;
            char *name;
            if (nfields != 2) {
                what = "input: expected 'input NAME'";
                goto bad;
            }
            if (!(name = unescape(f[1], &badesc))) {
                what = badesc ? "input: bad %-escape" : "out of memory";
                goto bad;
            }
            if (push_input(o, name) != XL_OK) {
                xl_free(name);
                what = "out of memory";
                goto bad;
            }
        } else if (strcmp(f[0], "file") == 0) {
            struct xl_tail_offset e = {0};
            if (nfields != 9) {
                what = "file: expected 8 fields (uid dev inode fingerprint fp_bytes offset "
                       "input path)";
                goto bad;
            }
            if ((what = parse_file(f, &e)) != NULL)
                goto bad;
            if (push_entry(o, &e) != XL_OK) {
                xl_free(e.input);
                xl_free(e.path);
                what = "out of memory";
                goto bad;
            }
        } else if (strcmp(f[0], "end") == 0) {
            if (nfields != 3 || !parse_u64(f[1], 10, &ni) || !parse_u64(f[2], 10, &nf)) {
                what = "end: expected 'end INPUTS FILES'";
                goto bad;
            }
            if (ni != o->inputs.n || nf != o->n) {
                xl_err_set(err, XL_EPARSE,
                           "%s:%lu: end: the file lists %zu inputs and %zu files, the end line "
                           "says %llu and %llu (file damaged)",
                           path, lineno, o->inputs.n, o->n, (unsigned long long)ni,
                           (unsigned long long)nf);
                goto fail;
            }
            ended = true;
        } else {
            what = "unknown line (expected input, file or end)";
            goto bad;
        }
    }
    if (first) {
        what = "empty file";
        lineno = 1;
        goto bad;
    }
    if (!ended) {
        what = "truncated: no end line";
        lineno++;
        goto bad;
    }
    return XL_OK;
bad:
    xl_err_set(err, XL_EPARSE, "%s:%lu: %s", path, lineno, what);
fail:
    xl_tail_offsets_cleanup(o);
    return XL_EPARSE;
}

xl_rc xl_tail_offsets_load(const char *path, struct xl_tail_offsets *o, struct xl_err *err)
{
    char *text;
    size_t len = 0;
    xl_rc rc;

    memset(o, 0, sizeof(*o));
    rc = read_all(path, &text, &len, err);
    if (rc == XL_ENOENT)
        return XL_OK;
    if (rc != XL_OK)
        return rc;
    if (memchr(text, 0, len)) {
        size_t at = (size_t)((char *)memchr(text, 0, len) - text);
        unsigned long lineno = 1;
        for (size_t i = 0; i < at; i++)
            lineno += text[i] == '\n';
        xl_err_set(err, XL_EPARSE, "%s:%lu: NUL byte (file damaged)", path, lineno);
        xl_free(text);
        return XL_EPARSE;
    }
    rc = parse(path, text, o, err);
    xl_free(text);
    return rc;
}

static xl_rc write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return XL_EIO;
        p += w;
        n -= (size_t)w;
    }
    return XL_OK;
}

static void fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd;

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Encode everything first so that only complete files reach the disk. */
xl_rc xl_tail_offsets_save(const char *path, const char *tmp_path, const struct xl_tail_offset *v,
                           size_t n, const char *const *inputs, size_t ninputs, struct xl_err *err)
{
    struct xl_buf b;
    xl_rc rc = XL_OK;
    int fd = -1;

    xl_buf_init(&b, (size_t)FILE_MAX);
    rc = xl_buf_adds(&b, MAGIC "\n# file UID DEV INODE FINGERPRINT FP_BYTES OFFSET INPUT PATH\n");
    for (size_t i = 0; rc == XL_OK && i < ninputs; i++) {
        if ((rc = xl_buf_adds(&b, "input ")) == XL_OK && (rc = put_escaped(&b, inputs[i])) == XL_OK)
            rc = xl_buf_add(&b, "\n", 1);
    }
    for (size_t i = 0; rc == XL_OK && i < n; i++) {
        const struct xl_tail_offset *e = &v[i];
        rc = xl_buf_printf(
            &b, "file %016" PRIx64 " %" PRIu64 " %" PRIu64 " %016" PRIx64 " %u %" PRIu64 " ",
            e->uid, e->dev, e->ino, e->fp, e->fp_len, e->offset);
        if (rc == XL_OK && (rc = put_escaped(&b, e->input)) == XL_OK &&
            (rc = xl_buf_add(&b, " ", 1)) == XL_OK && (rc = put_escaped(&b, e->path)) == XL_OK)
            rc = xl_buf_add(&b, "\n", 1);
    }
    if (rc == XL_OK)
        rc = xl_buf_printf(&b, "end %zu %zu\n", ninputs, n);
    if (rc != XL_OK) {
        rc = xl_err_set(err, rc, "%s: encoding: %s", path, xl_rc_str(rc));
        goto out;
    }
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: open", tmp_path);
        goto out;
    }
    if (write_all(fd, b.data, b.len) != XL_OK) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: write", tmp_path);
        goto out_unlink;
    }
    if (fsync(fd) < 0) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: fsync", tmp_path);
        goto out_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = xl_err_sys(err, XL_EIO, errno, "%s: close", tmp_path);
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp_path, path) < 0) {
        rc = xl_err_sys(err, XL_EIO, errno, "%s: rename to %s", tmp_path, path);
        goto out_unlink;
    }
    fsync_dir_of(path);
    goto out;
out_unlink:
    unlink(tmp_path);
out:
    if (fd >= 0)
        close(fd);
    xl_buf_cleanup(&b);
    return rc;
}
