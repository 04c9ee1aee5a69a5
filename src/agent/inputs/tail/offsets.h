/* xluo-agent tail input: the offsets file (state_dir/tail-offsets).
 *
 * One text file, replaced atomically (written to a temporary file, fsynced,
 * renamed over the old one, directory fsynced), so that a crash leaves the
 * old or the new version, never a mix:
 *
 *   xluo-tail-offsets 1
 *   input app
 *   file 9f2c01d4a7b3e865 2049 1234567 0123456789abcdef 1024 81920 app /var/log/app.log
 *   end 1 1
 *
 * `input NAME` lists the inputs that have run (an input known here reads
 * files it has never seen from the head: they appeared while the agent was
 * stopped). `file` lines hold file_uid (16 hex), device, inode, fingerprint
 * (16 hex), the number of bytes it covers, the committed offset, the input
 * and the path; names are percent-escaped (%XX for '%', space, control
 * bytes). `end` repeats the counts so that a cut file is detected. Lines
 * starting with '#' are comments. */
#ifndef XL_TAIL_OFFSETS_H
#define XL_TAIL_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/rc.h"

struct xl_tail_offset {
    uint64_t uid, dev, ino, fp, offset;
    uint32_t fp_len;
    char *input; /* owned in a loaded set; only read when saving */
    char *path;
    int claimed; /* used by the caller while matching files at start */
};

struct xl_tail_offsets {
    struct xl_tail_offset *v;
    size_t n, cap;
    struct xl_strlist inputs;
};

/* Load path into o (which must be zeroed). A missing file is an empty set.
 * A bad file: XL_EPARSE, "PATH:LINE: what is wrong". The file is limited to
 * 256 MiB (XL_ETOOBIG). o is left empty on error. */
xl_rc xl_tail_offsets_load(const char *path, struct xl_tail_offsets *o, struct xl_err *err);

/* Write the entries and input names to path atomically through tmp_path.
 * XL_EIO naming the file and the failed call; path is unchanged then. */
xl_rc xl_tail_offsets_save(const char *path, const char *tmp_path, const struct xl_tail_offset *v,
                           size_t n, const char *const *inputs, size_t ninputs, struct xl_err *err);

void xl_tail_offsets_cleanup(struct xl_tail_offsets *o);

#endif
