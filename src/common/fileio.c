/* xluo: whole-file helpers. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd); /* best effort: some filesystems refuse fsync on a directory */
        close(fd);
    }
}

xl_rc xl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           struct xl_err *err)
{
    char tmp[PATH_MAX];
    const char *p = data;
    size_t left = len;
    int fd, e;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return xl_err_set(err, XL_EINVAL, "path too long: %s", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
        return xl_err_sys(err, XL_EIO, errno, "cannot create %s", tmp);
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    close(fd);
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return xl_err_sys(err, XL_EIO, e, "cannot rename %s to %s", tmp, path);
    }
    fsync_dir_of(path);
    return XL_OK;
fail:
    e = errno ? errno : EIO;
    close(fd);
    unlink(tmp);
    return xl_err_sys(err, XL_EIO, e, "cannot write %s", tmp);
}

xl_rc xl_file_read_small(const char *path, char *buf, size_t len, int first_line,
                         struct xl_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return errno == ENOENT ? XL_ENOENT : xl_err_sys(err, XL_EIO, errno, "cannot open %s", path);
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return xl_err_sys(err, XL_EIO, errno, "cannot read %s", path);
    buf[n] = '\0';
    if (first_line)
        buf[strcspn(buf, "\r\n")] = '\0';
    return XL_OK;
}
