/* xluo-server: which batches of one agent are stored, by seq, for
 * exactly-once ingest (docs/protocol.md "Exactly once").
 *
 * An agent numbers its batches 1, 2, 3, ... (seq 0 is never tracked) and
 * may promise a floor: it will never send a seq below it again. The set
 * keeps a floor (every seq in [1, floor) is done: stored, or promised never
 * to come again) and the done seqs above it as sorted runs [lo, hi]. A run
 * that reaches down to the floor is folded into it, so an agent whose
 * batches arrive in order costs one number, one whose seqs jump (an agent
 * restart skips the rest of its reserved block) one run per jump.
 *
 * Beside that, the seqs being stored right now ("busy"), so that a second
 * copy of a batch that arrives while the first is still being stored can be
 * told to come back later instead of being stored twice.
 *
 * Pure data structure: no locking, no I/O (the registry does both). */
#ifndef XL_SEQSET_H
#define XL_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rc.h"

/* Runs kept above the floor: when a new run would pass this, the lowest
 * run is forgotten (its seqs count as new again: a resend of one of them
 * is stored again, and the stores' own dedup keeps that harmless). */
#define XL_SEQSET_MAX_RUNS 512
/* Batches of one agent being stored at the same time. */
#define XL_SEQSET_MAX_BUSY 1024

struct xl_seq_run {
    uint64_t lo, hi; /* inclusive */
};

struct xl_seqset {
    uint64_t floor;          /* every seq in [1, floor) is done */
    struct xl_seq_run *runs; /* done seqs >= floor: sorted, disjoint, not adjacent, lo > floor */
    size_t nruns, cap_runs;
    uint64_t *busy; /* seqs being stored now, unordered */
    size_t nbusy, cap_busy;
};

enum xl_seq_state {
    XL_SEQ_NEW,  /* never stored (or forgotten): store it */
    XL_SEQ_DONE, /* stored before, or below the floor: a duplicate */
    XL_SEQ_BUSY, /* another copy is being stored right now */
};

void xl_seqset_init(struct xl_seqset *s);
void xl_seqset_cleanup(struct xl_seqset *s);
/* Move the content of from into to (to is cleaned first); from is left empty. */
void xl_seqset_move(struct xl_seqset *to, struct xl_seqset *from);

/* What seq is. Seq 0 is always XL_SEQ_NEW (not tracked). */
enum xl_seq_state xl_seqset_state(const struct xl_seqset *s, uint64_t seq);

/* The agent promised never to send a seq below floor again: raise the
 * floor (a lower one is ignored) and drop what it covers. Returns whether
 * anything changed. Never fails. */
bool xl_seqset_raise_floor(struct xl_seqset *s, uint64_t floor);

/* Look seq up and, when it is new (and not 0), mark it busy: the caller
 * stores the batch and then calls xl_seqset_end. *state says which.
 * XL_EFULL when XL_SEQSET_MAX_BUSY batches are busy, XL_ENOMEM; either
 * way nothing changed. */
xl_rc xl_seqset_begin(struct xl_seqset *s, uint64_t seq, enum xl_seq_state *state);

/* The batch begun with seq is finished: not busy any more and, if stored,
 * done. Returns whether the done seqs changed (so the set needs writing).
 * When memory for one more run is lacking the seq is simply not recorded
 * (it counts as new again, which is safe, see XL_SEQSET_MAX_RUNS). */
bool xl_seqset_end(struct xl_seqset *s, uint64_t seq, bool stored);

/* Record seq as done (used by xl_seqset_end and to load). Returns whether
 * the set changed. XL_ENOMEM leaves the set unchanged. */
xl_rc xl_seqset_add(struct xl_seqset *s, uint64_t seq, bool *changed);

/* The runs as text "lo-hi,lo-hi" (empty without runs), appended to out.
 * XL_ENOMEM, XL_ETOOBIG (out's maximum). */
xl_rc xl_seqset_format(const struct xl_seqset *s, struct xl_buf *out);

/* Set s (cleaned first) to floor and the runs of text (as written by
 * xl_seqset_format). XL_EPARSE naming the byte offset when text is not
 * such a list (s is then empty), XL_ENOMEM. */
xl_rc xl_seqset_load(struct xl_seqset *s, uint64_t floor, const char *text, struct xl_err *err);

#endif
