/* xluo-agent tail input: the entry points and the scheduler.
 *
 * Files with something to read wait in one FIFO. A uv_idle handle runs
 * while the FIFO is not empty (and the sink is not full): each loop
 * iteration gives every queued file a turn of at most TAIL_FILE_BUDGET
 * bytes, TAIL_TURN_BUDGET in all, then lets the loop run the network, the
 * timers and inotify. Nothing here blocks but file reads (page cache) and
 * the once-a-second checkpoint write.
 *
 * Re-entrancy: the sink's callbacks may call xl_tail_commit, xl_tail_resume,
 * xl_tail_get_stats and xl_tail_checkpoint; work they cause (closing a
 * committed file) is deferred to the next idle turn. They must not call
 * xl_tail_reconfigure or xl_tail_stop. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/units.h"
#include "tail_int.h"

#define CKPT_EVERY_MS 1000
#define DEF_MAX_LINE (64 * 1024)
#define MIN_MAX_LINE 16
#define MAX_MAX_LINE (16 * 1024 * 1024)
#define DEF_POLL_MS 1000
#define DEF_ROTATE_WAIT_MS 5000
/* What an empty turn (a pread finding nothing) counts against the budget. */
#define TURN_COST 4096

static void on_poll(uv_timer_t *h);
static void on_idle(uv_idle_t *h);

/* ------------------------------------------------------------ scheduling */

void tail_kick(struct xl_tail *t)
{
    if (t->stopping || t->idle_on)
        return;
    if ((t->qhead && !t->paused) || t->deferred) {
        t->idle_on = true;
        uv_idle_start(&t->idle, on_idle);
    }
}

void tail_enqueue(struct xl_tail *t, struct tfile *f)
{
    if (f->queued || f->fd < 0 || f->forget)
        return;
    f->queued = true;
    f->qnext = NULL;
    if (t->qtail)
        t->qtail->qnext = f;
    else
        t->qhead = f;
    t->qtail = f;
    tail_kick(t);
}

static struct tfile *dequeue(struct xl_tail *t)
{
    struct tfile *f = t->qhead;

    if (!f)
        return NULL;
    t->qhead = f->qnext;
    if (!t->qhead)
        t->qtail = NULL;
    f->qnext = NULL;
    f->queued = false;
    return f;
}

/* Forget committed files and walk inputs whose directories changed. */
static void run_deferred(struct xl_tail *t)
{
    t->deferred = false;
    for (struct tinput *in = t->inputs; in; in = in->next) {
        struct tfile *f, *next;
        if (in->rescan_pending)
            tinput_walk(in, false);
        for (f = in->files; f; f = next) {
            next = f->next;
            if (f->forget)
                tfile_forget(f);
        }
    }
}

static void on_idle(uv_idle_t *h)
{
    struct xl_tail *t = h->data;
    size_t budget = TAIL_TURN_BUDGET;

    if (t->deferred)
        run_deferred(t);
    while (budget > 0 && !t->paused && t->qhead) {
        struct tfile *f = dequeue(t);
        size_t used;
        enum read_status st;

        st = tail_read_turn(f, budget < TAIL_FILE_BUDGET ? budget : TAIL_FILE_BUDGET, &used);
        used += TURN_COST;
        budget = used < budget ? budget - used : 0;
        if (st == READ_PAUSED)
            t->paused = true;
        if (st == READ_MORE || st == READ_PAUSED)
            tail_enqueue(t, f);
    }
    if (t->deferred)
        run_deferred(t);
    if ((!t->qhead || t->paused) && !t->deferred) {
        uv_idle_stop(h);
        t->idle_on = false;
    }
}

/* ------------------------------------------------------------ checkpoints */

static xl_rc checkpoint(struct xl_tail *t, struct xl_err *err)
{
    size_t n = 0, ni = 0, k = 0;
    const char **names;
    xl_rc rc;

    for (struct tinput *in = t->inputs; in; in = in->next) {
        ni++;
        for (struct tfile *f = in->files; f; f = f->next)
            n++;
    }
    if (n > t->ckpt_cap) {
        struct xl_tail_offset *v = xl_realloc(t->ckpt, n * sizeof(*v));
        if (!v)
            return xl_err_set(err, XL_ENOMEM, "out of memory");
        t->ckpt = v;
        t->ckpt_cap = n;
    }
    if (!(names = xl_calloc(ni ? ni : 1, sizeof(*names))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    ni = 0;
    for (struct tinput *in = t->inputs; in; in = in->next) {
        names[ni++] = in->name;
        for (struct tfile *f = in->files; f; f = f->next) {
            if (f->forget)
                continue;
            t->ckpt[k++] = (struct xl_tail_offset){.uid = f->uid,
                                                   .dev = f->dev,
                                                   .ino = f->ino,
                                                   .fp = f->fp,
                                                   .fp_len = f->fp_len,
                                                   .offset = f->committed,
                                                   .input = in->name,
                                                   .path = f->path};
        }
    }
    rc = xl_tail_offsets_save(t->state_path, t->state_tmp, t->ckpt, k, names, ni, err);
    xl_free(names);
    if (rc == XL_OK) {
        t->dirty = false;
        t->last_ckpt_ms = (int64_t)uv_now(t->loop);
        for (struct tinput *in = t->inputs; in; in = in->next)
            for (struct tfile *f = in->files; f; f = f->next)
                f->saved = true;
    }
    return rc;
}

void tail_save_now(struct xl_tail *t)
{
    struct xl_err err = {0};
    int64_t now = (int64_t)uv_now(t->loop);

    if (t->stopping || (t->ckpt_failed_ms && now - t->ckpt_failed_ms < CKPT_EVERY_MS))
        return;
    if (checkpoint(t, &err) != XL_OK) {
        t->ckpt_failed_ms = now;
        xl_log_rl(XL_LOG_ERROR, 60, TAIL_MOD, "checkpoint: %s", err.msg);
    }
}

static void on_ckpt(uv_timer_t *h)
{
    struct xl_tail *t = h->data;
    struct xl_err err = {0};

    if (!t->dirty)
        return;
    if (checkpoint(t, &err) != XL_OK) {
        xl_log_rl(XL_LOG_ERROR, 60, TAIL_MOD, "checkpoint: %s", err.msg);
        uv_timer_start(&t->ckpt_timer, on_ckpt, CKPT_EVERY_MS, 0);
    }
}

/* Something to save changed: write within a second, at most once a second. */
void tail_set_dirty(struct xl_tail *t)
{
    int64_t delay;

    t->dirty = true;
    if (t->stopping || uv_is_active((uv_handle_t *)&t->ckpt_timer))
        return;
    delay = t->last_ckpt_ms + CKPT_EVERY_MS - (int64_t)uv_now(t->loop);
    uv_timer_start(&t->ckpt_timer, on_ckpt, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* A random non-zero uid no live file has. */
uint64_t tail_new_uid(struct xl_tail *t)
{
    static uint64_t counter;
    uint64_t u;

    do {
        if (getrandom(&u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            u = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ ((uint64_t)ts.tv_nsec << 20) ^
                ((uint64_t)getpid() << 44) ^ ++counter * 0x9e3779b97f4a7c15ULL;
        }
    } while (u == 0 || tmap_find_uid(&t->maps[MAP_UID], u));
    return u;
}

/* ------------------------------------------------------------ inputs */

static xl_rc strlist_copy(struct xl_strlist *dst, const struct xl_strlist *src)
{
    dst->v = NULL;
    dst->n = 0;
    if (!src || src->n == 0)
        return XL_OK;
    if (!(dst->v = xl_calloc(src->n, sizeof(*dst->v))))
        return XL_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        if (!(dst->v[i] = xl_strdup(src->v[i])))
            return XL_ENOMEM;
        dst->n = i + 1;
    }
    return XL_OK;
}

static void strlist_free(struct xl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        xl_free(l->v[i]);
    xl_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool strlist_equal(const struct xl_strlist *a, const struct xl_strlist *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* Free what tinput_prepare allocated (files and handles are gone). */
static void tinput_free(struct tinput *in)
{
    if (!in)
        return;
    xl_tail_filter_free(in->filter);
    xl_tail_ml_rule_free(in->ml);
    strlist_free(&in->paths);
    strlist_free(&in->exclude_paths);
    xl_free(in->wds);
    xl_free(in->name);
    xl_free(in);
}

static xl_rc validate(const struct xl_tail_input_cfg *inputs, size_t n, struct xl_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct xl_tail_input_cfg *c = &inputs[i];
        if (!c->name || !*c->name)
            return xl_err_set(err, XL_EINVAL, "inputs.tail[%zu]: name is required", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(inputs[j].name, c->name) == 0)
                return xl_err_set(err, XL_EINVAL,
                                  "inputs.tail[%zu]: name '%s' is already used by "
                                  "inputs.tail[%zu]",
                                  i, c->name, j);
        if (c->paths.n == 0)
            return xl_err_set(err, XL_EINVAL,
                              "inputs.tail[%zu] (%s): paths: at least one file or glob is needed",
                              i, c->name);
        for (size_t j = 0; j < c->paths.n; j++)
            if (!c->paths.v[j] || !*c->paths.v[j])
                return xl_err_set(err, XL_EINVAL, "inputs.tail[%zu].paths[%zu]: empty path", i, j);
        if (c->from && strcmp(c->from, "end") != 0 && strcmp(c->from, "head") != 0)
            return xl_err_set(err, XL_EINVAL, "inputs.tail[%zu].from: '%s' is not one of end|head",
                              i, c->from);
        if (c->max_line_bytes != 0 &&
            (c->max_line_bytes < MIN_MAX_LINE || c->max_line_bytes > MAX_MAX_LINE))
            return xl_err_set(err, XL_ERANGE,
                              "inputs.tail[%zu].max_line_bytes: %" PRId64
                              " is out of range (allowed %d to %d bytes)",
                              i, c->max_line_bytes, MIN_MAX_LINE, MAX_MAX_LINE);
    }
    return XL_OK;
}

/* Copy and compile one input's settings; no handle, no file yet. */
static xl_rc tinput_prepare(struct xl_tail *t, const struct xl_tail_input_cfg *c, size_t idx,
                            struct tinput **out, struct xl_err *err)
{
    struct tinput *in = xl_calloc(1, sizeof(*in));
    xl_rc rc;

    *out = NULL;
    if (!in)
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    in->t = t;
    snprintf(in->where, sizeof(in->where), "inputs.tail[%zu]", idx);
    if (!(in->name = xl_strdup(c->name)) || strlist_copy(&in->paths, &c->paths) != XL_OK ||
        strlist_copy(&in->exclude_paths, &c->exclude_paths) != XL_OK) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    in->started_ms = xl_now_ms();
    in->from_head = c->from && strcmp(c->from, "head") == 0;
    in->max_line_bytes = c->max_line_bytes > 0 ? (size_t)c->max_line_bytes : DEF_MAX_LINE;
    in->poll_interval = c->poll_interval > 0 ? c->poll_interval : DEF_POLL_MS;
    in->rotate_wait = c->rotate_wait >= 0 ? c->rotate_wait : DEF_ROTATE_WAIT_MS;
    if ((rc = xl_tail_filter_new(&c->include, &c->exclude, in->where, &in->filter, err)) != XL_OK)
        goto fail;
    if (xl_tail_filter_passes_all(in->filter)) {
        xl_tail_filter_free(in->filter);
        in->filter = NULL;
    }
    if ((rc = xl_tail_ml_rule_new(&c->multiline, in->where, &in->ml, err)) != XL_OK)
        goto fail;
    *out = in;
    return XL_OK;
fail:
    tinput_free(in);
    return rc;
}

static void on_input_handle_closed(uv_handle_t *h)
{
    struct tinput *in = h->data;
    struct xl_tail *t = in->t;

    if (--in->handles_open == 0)
        tinput_free(in);
    tail_handle_closed(t);
}

static void tinput_init_handles(struct tinput *in)
{
    struct xl_tail *t = in->t;

    uv_timer_init(t->loop, &in->poll_timer);
    uv_timer_init(t->loop, &in->ml_timer);
    in->poll_timer.data = in->ml_timer.data = in;
    in->handles_open = 2;
    t->handles_open += 2;
}

static void tinput_start_poll(struct tinput *in)
{
    uv_timer_start(&in->poll_timer, on_poll, (uint64_t)in->poll_interval,
                   (uint64_t)in->poll_interval);
}

/* Close the input's files and watches; it is freed once its timers closed. */
static void tinput_close(struct tinput *in)
{
    in->removed = true;
    tail_tracks_drop(in->t, in);
    tfile_close_all(in);
    tail_retired_drop(in->t, in);
    tinput_unwatch_all(in);
    uv_close((uv_handle_t *)&in->poll_timer, on_input_handle_closed);
    uv_close((uv_handle_t *)&in->ml_timer, on_input_handle_closed);
}

/* The poll: walk the globs, look at every open file, finish and forget
 * away files. Also the safety net for a sink that never calls resume. */
static void on_poll(uv_timer_t *h)
{
    struct tinput *in = h->data;
    struct xl_tail *t = in->t;
    int64_t now = (int64_t)uv_now(t->loop);
    struct tfile *f, *next;

    if (t->paused && (!t->sink.full || !t->sink.full(t->sink.ctx)))
        xl_tail_resume(t);
    tinput_walk(in, false);
    for (f = in->files; f; f = next) {
        next = f->next;
        tfile_check(f, true);
        tfile_idle_checks(f, now);
    }
    tail_kick(t);
}

/* ------------------------------------------------------------ lifecycle */

static void tail_free(struct xl_tail *t)
{
    for (int i = 0; i < MAP_COUNT; i++)
        tmap_cleanup(&t->maps[i]);
    xl_tail_offsets_cleanup(&t->saved);
    xl_free(t->ckpt);
    xl_free(t->rbuf);
    xl_free(t->state_path);
    xl_free(t->state_tmp);
    xl_free(t);
}

void tail_handle_closed(struct xl_tail *t)
{
    if (--t->handles_open == 0 && t->stopping)
        tail_free(t);
}

static void on_tail_handle_closed(uv_handle_t *h)
{
    tail_handle_closed(h->data);
}

static bool name_in(const struct xl_strlist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return true;
    return false;
}

xl_rc xl_tail_start(uv_loop_t *loop, const char *state_dir, const struct xl_tail_input_cfg *inputs,
                    size_t n, const struct xl_tail_sink *sink, struct xl_tail **out,
                    struct xl_err *err)
{
    struct xl_tail *t;
    struct tinput **tailp;
    xl_rc rc;

    *out = NULL;
    if (!sink || !sink->line || !sink->mark)
        return xl_err_set(err, XL_EINVAL, "tail: the sink needs line and mark callbacks");
    if (!state_dir || !*state_dir)
        return xl_err_set(err, XL_EINVAL, "tail: no state directory");
    if ((rc = validate(inputs, n, err)) != XL_OK)
        return rc;
    if (!(t = xl_calloc(1, sizeof(*t))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    t->loop = loop;
    t->sink = *sink;
    t->ifd = -1;
    for (int i = 0; i < MAP_COUNT; i++)
        tmap_init(&t->maps[i], (enum tfile_map)i);
    if ((rc = xl_mkdirs(state_dir, err)) != XL_OK)
        goto fail;
    t->state_path = xl_asprintf("%s/tail-offsets", state_dir);
    t->state_tmp = xl_asprintf("%s/tail-offsets.tmp", state_dir);
    if (!t->state_path || !t->state_tmp) {
        rc = xl_err_set(err, XL_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = xl_tail_offsets_load(t->state_path, &t->saved, err)) != XL_OK)
        goto fail;
    if ((rc = tail_grow_buffer(t, TAIL_READ_CHUNK / 4, err)) != XL_OK)
        goto fail;
    tailp = &t->inputs;
    for (size_t i = 0; i < n; i++) {
        struct tinput *in;
        if ((rc = tinput_prepare(t, &inputs[i], i, &in, err)) != XL_OK)
            goto fail;
        *tailp = in;
        tailp = &in->next;
        in->has_history = name_in(&t->saved.inputs, in->name);
        if ((rc = tail_grow_buffer(t, in->max_line_bytes, err)) != XL_OK)
            goto fail;
    }
    /* From here nothing fails: handles, then the first walks. */
    uv_idle_init(loop, &t->idle);
    uv_timer_init(loop, &t->ckpt_timer);
    t->idle.data = t->ckpt_timer.data = t;
    t->handles_open = 2;
    tail_watch_start(t);
    for (struct tinput *in = t->inputs; in; in = in->next)
        tinput_init_handles(in);
    for (struct tinput *in = t->inputs; in; in = in->next)
        tinput_walk(in, true);
    tfile_resolve_saved(t);
    for (struct tinput *in = t->inputs; in; in = in->next) {
        in->has_history = false;
        tinput_start_poll(in);
    }
    tail_set_dirty(t);
    tail_kick(t);
    xl_log_info(TAIL_MOD, "%zu inputs, %" PRIu64 " files followed%s", n, t->st.files_open,
                t->ifd >= 0 ? "" : " (polling: no inotify)");
    *out = t;
    return XL_OK;
fail:
    while (t->inputs) {
        struct tinput *in = t->inputs;
        t->inputs = in->next;
        tinput_free(in);
    }
    tail_free(t);
    return rc;
}

/* Apply the new settings of a kept input; its files and positions stay.
 * src is the prepared copy; what it held before is freed with it. */
static void tinput_update(struct tinput *in, struct tinput *src)
{
    struct tinput tmp;
    bool paths_changed = !strlist_equal(&in->paths, &src->paths) ||
                         !strlist_equal(&in->exclude_paths, &src->exclude_paths);
    bool poll_changed = in->poll_interval != src->poll_interval;

    if (in->ml) {
        for (struct tfile *f = in->files; f; f = f->next)
            tail_ml_flush(f);
        uv_timer_stop(&in->ml_timer);
    }
#define SWAP(field)                                                                                \
    do {                                                                                           \
        tmp.field = in->field;                                                                     \
        in->field = src->field;                                                                    \
        src->field = tmp.field;                                                                    \
    } while (0)
    SWAP(paths);
    SWAP(exclude_paths);
    SWAP(filter);
    SWAP(ml);
#undef SWAP
    memcpy(in->where, src->where, sizeof(in->where)); /* started_ms stays */
    in->from_head = src->from_head;
    in->max_line_bytes = src->max_line_bytes;
    in->poll_interval = src->poll_interval;
    in->rotate_wait = src->rotate_wait;
    tinput_free(src);
    if (poll_changed)
        tinput_start_poll(in);
    tinput_walk(in, paths_changed);
}

xl_rc xl_tail_reconfigure(struct xl_tail *t, const struct xl_tail_input_cfg *inputs, size_t n,
                          struct xl_err *err)
{
    struct tinput **prep, *list = NULL, **tailp = &list;
    xl_rc rc;

    if ((rc = validate(inputs, n, err)) != XL_OK)
        return rc;
    if (!(prep = xl_calloc(n ? n : 1, sizeof(*prep))))
        return xl_err_set(err, XL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((rc = tinput_prepare(t, &inputs[i], i, &prep[i], err)) != XL_OK ||
            (rc = tail_grow_buffer(t, prep[i]->max_line_bytes, err)) != XL_OK) {
            for (size_t j = 0; j <= i; j++)
                tinput_free(prep[j]);
            xl_free(prep);
            return rc;
        }
    }
    /* Nothing fails from here. Kept inputs move to the new list in the new
     * order; what is left in t->inputs was removed. */
    for (size_t i = 0; i < n; i++) {
        struct tinput **pp = &t->inputs, *in;
        while (*pp && strcmp((*pp)->name, prep[i]->name) != 0)
            pp = &(*pp)->next;
        if ((in = *pp) != NULL) {
            *pp = in->next;
            in->next = NULL;
            *tailp = in;
            tailp = &in->next;
            tinput_update(in, prep[i]);
        } else {
            in = prep[i];
            *tailp = in;
            tailp = &in->next;
            tinput_init_handles(in);
            tinput_walk(in, true);
            tinput_start_poll(in);
            xl_log_info(TAIL_MOD, "%s: input added", in->name);
        }
    }
    while (t->inputs) {
        struct tinput *in = t->inputs;
        t->inputs = in->next;
        xl_log_info(TAIL_MOD, "%s: input removed", in->name);
        tinput_close(in);
    }
    t->inputs = list;
    xl_free(prep);
    tail_set_dirty(t);
    tail_kick(t);
    return XL_OK;
}

void xl_tail_commit(struct xl_tail *t, uint64_t file_uid, uint64_t end)
{
    struct tfile *f;

    if (!t || t->stopping || !(f = tmap_find_uid(&t->maps[MAP_UID], file_uid)))
        return;
    if (end <= f->committed)
        return;
    f->committed = end;
    tail_set_dirty(t);
    if (f->finished && f->committed >= f->final_end && !f->forget) {
        f->forget = true;
        t->deferred = true;
        tail_kick(t);
    }
}

void xl_tail_resume(struct xl_tail *t)
{
    if (!t || !t->paused)
        return;
    t->paused = false;
    tail_kick(t);
}

xl_rc xl_tail_checkpoint(struct xl_tail *t, struct xl_err *err)
{
    return checkpoint(t, err);
}

void xl_tail_get_stats(const struct xl_tail *t, struct xl_tail_stats *out)
{
    *out = t->st;
    out->watches = t->nwdirs;
    out->inotify = t->ifd >= 0 && t->st.inotify;
}

void xl_tail_stop(struct xl_tail *t)
{
    struct xl_err err = {0};

    if (!t || t->stopping)
        return;
    if (checkpoint(t, &err) != XL_OK)
        xl_log_error(TAIL_MOD, "checkpoint at stop: %s", err.msg);
    t->stopping = true;
    while (dequeue(t))
        ;
    while (t->inputs) {
        struct tinput *in = t->inputs;
        t->inputs = in->next;
        tinput_close(in);
    }
    tail_watch_stop(t);
    t->qhead = t->qtail = NULL;
    uv_close((uv_handle_t *)&t->idle, on_tail_handle_closed);
    uv_close((uv_handle_t *)&t->ckpt_timer, on_tail_handle_closed);
}
