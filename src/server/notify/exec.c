/* xluo-server: exec channels. Run a command (argv, no shell) in its own
 * process group with the generic JSON on stdin; exit 0 means delivered.
 * The tail of what it prints (stdout and stderr) goes into the report. A
 * command past its timeout has its whole group killed. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/units.h"
#include "notify_int.h"

extern char **environ;

#define BODY_MAX (8 * 1024 * 1024)
#define POLL_MS 50

/* Keep the last SNIPPET_MAX bytes of the output. */
static void tail_add(struct xl_notify_result *r, const char *p, size_t n)
{
    size_t cap = sizeof(r->snippet);

    if (n >= cap) {
        memcpy(r->snippet, p + n - cap, cap);
        r->snippet_len = cap;
        return;
    }
    if (r->snippet_len + n > cap) {
        size_t drop = r->snippet_len + n - cap;
        memmove(r->snippet, r->snippet + drop, r->snippet_len - drop);
        r->snippet_len -= drop;
    }
    memcpy(r->snippet + r->snippet_len, p, n);
    r->snippet_len += n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static pid_t spawn(const struct xl_notify_channel_cfg *ch, int in[2], int out[2], int *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char **argv;
    pid_t pid = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawnattr_setpgroup(&at, 0);
    {
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&at, &none);
        sigaddset(&none, SIGPIPE); /* the server may ignore it; the command not */
        posix_spawnattr_setsigdefault(&at, &none);
    }
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    /* The config's list is not NULL-terminated; argv must be. */
    if (!(argv = xl_calloc(ch->command.n + 1, sizeof(*argv)))) {
        *err = ENOMEM;
        goto out;
    }
    memcpy(argv, ch->command.v, ch->command.n * sizeof(*argv));
    *err = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    xl_free(argv);
out:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return *err ? -1 : pid;
}

void xl_notify_exec_deliver(const struct xl_notify_channel_cfg *ch, const struct xl_notify_msg *m,
                            const atomic_bool *abort, struct xl_notify_result *r)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, serr = 0, wst = 0;
    sigset_t pipe_set, old;
    struct xl_buf body;
    size_t off = 0;
    pid_t pid = -1;
    bool reaped = false, timed_out = false, aborted = false;
    int64_t deadline = xl_mono_ms() + ch->timeout;
    xl_rc rc;

    /* A command that exits without reading its stdin must not kill us. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    xl_buf_init(&body, BODY_MAX);
    if ((rc = xl_notify_render_generic(ch, m, &body)) != XL_OK) {
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "cannot build the JSON: %s", xl_rc_str(rc));
        goto out;
    }
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "pipe: %s", strerror(errno));
        goto out;
    }
    if ((pid = spawn(ch, in, out, &serr)) < 0) {
        xl_notify_result_error(r, XL_NOTIFY_PERMANENT, "cannot run %s: %s", ch->command.v[0],
                               strerror(serr));
        goto out;
    }
    close_fd(&in[0]);
    close_fd(&out[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    if (body.len == 0)
        close_fd(&in[1]);
    while (!reaped || out[0] >= 0) {
        struct pollfd pf[2];
        nfds_t n = 0;
        int64_t left = deadline - xl_mono_ms();

        if (atomic_load(abort)) {
            aborted = true;
            break;
        }
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (out[0] >= 0)
            pf[n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        if (in[1] >= 0)
            pf[n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        if (n)
            poll(pf, n, left < POLL_MS ? (int)left : POLL_MS);
        else
            poll(NULL, 0, left < 10 ? (int)left : 10); /* output closed: waiting for the exit */
        for (nfds_t i = 0; i < n; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == out[0]) {
                char chunk[4096];
                ssize_t k = read(out[0], chunk, sizeof(chunk));

                if (k > 0)
                    tail_add(r, chunk, (size_t)k);
                else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                    close_fd(&out[0]);
            } else {
                ssize_t k = write(in[1], body.data + off, body.len - off);

                if (k > 0)
                    off += (size_t)k;
                if ((k < 0 && errno != EAGAIN && errno != EINTR) || off == body.len)
                    close_fd(&in[1]); /* EPIPE: it stopped reading; its exit tells */
            }
        }
        if (!reaped && waitpid(pid, &wst, WNOHANG) == pid)
            reaped = true;
    }
    if (timed_out || aborted)
        kill(-pid, SIGKILL); /* the group: what it started too */
    if (!reaped)
        waitpid(pid, &wst, 0);
    if (aborted) {
        xl_notify_result_error(r, XL_NOTIFY_DROPPED, "aborted at shutdown");
    } else if (timed_out) {
        xl_notify_result_error(r, XL_NOTIFY_TRANSIENT,
                               "timed out after %lld ms: process group killed",
                               (long long)ch->timeout);
    } else if (WIFEXITED(wst)) {
        r->status = WEXITSTATUS(wst);
        if (r->status == 0)
            r->outcome = XL_NOTIFY_OK;
        else
            xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "exited with status %d", r->status);
    } else {
        r->status = 128 + WTERMSIG(wst);
        xl_notify_result_error(r, XL_NOTIFY_TRANSIENT, "killed by signal %d", WTERMSIG(wst));
    }
out:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    xl_buf_cleanup(&body);
    {
        /* Consume a SIGPIPE our write raised before unblocking it. */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
