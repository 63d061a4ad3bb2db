/*
 * examples/charlm/ranks.c - the ranks of an MPI run agree before they
 * work (nn/dist.h, tg_dist_agree).
 *
 * Ranks given other flags, other text or another checkpoint used to hang
 * in a broadcast of another size, overrun its buffer, or train on
 * different data in silence. So each rank first describes its run - the
 * build, every flag that must match, the vocabulary, the size and hash of
 * its text, the checkpoint it resumes and the weights it starts from - or
 * says why it cannot start, and rank 0 names the first rank and field
 * that differ, or the first rank that failed. Every rank then stops, or
 * all start together. Twice: the command lines (a bad flag on one rank),
 * then the runs, once each rank has read its data and checkpoint.
 */
#include "charlm.h"
#include "nn/dist.h"
#include "ops/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int agree(const tg_dist_digest *d, const char *hint)
{
    char why[TG_DIST_WHY];
    int rc = tg_dist_agree(d, why, sizeof why);
    if (rc == 0)
        return 0;
    return rc == -2 ? cli_fail("%s (%s)", why, hint) : cli_fail("%s", why);
}

int cl_ranks_agree_command(const char *what, const char *error)
{
    if (tg_dist_size() == 1)
        return error && *error ? cli_fail("%s", error) : 0;
    tg_dist_digest d = {0};
    if (error && *error)
        tg_dist_digest_fail(&d, error);
    else
        tg_dist_digest_add(&d, "the command", "charlm %s", what);
    return agree(&d, "start every rank with the same command line");
}

/* the parameters' numbers, as they start */
static uint64_t weights_hash(const tg_params *ps)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < tg_params_count(ps); i++) {
        const tg_tensor *t = tg_params_at(ps, i)->tensor;
        h = cl_fnv(h, t->data, (size_t)t->numel * sizeof *t->data);
    }
    return h;
}

static void describe(const cl_run *r, const cl_config *c, tg_dist_digest *d)
{
    /* the build: every rank applies the same summed gradient, and must
     * compute it with the same arithmetic */
    tg_dist_digest_add(d, "charlm version", "%s", CL_VERSION);
    tg_dist_digest_add(d, "precision", "%s", TG_REAL_NAME);
    tg_dist_digest_add(d, "kernel level (TG_KERNELS)", "%s", tg_kernels_level());
    /* the flags a checkpoint keeps (as merged with a checkpoint's), but
     * the path of --data: its text is compared below */
    int n;
    const cl_opt *opts = cl_train_opts(&n);
    for (int i = 0; i < n; i++) {
        if (!(opts[i].flags & CL_STORED) || !strcmp(opts[i].name, "data"))
            continue;
        char name[TG_DIST_NAME], value[4200];
        snprintf(name, sizeof name, "--%s", opts[i].name);
        if (!strcmp(opts[i].name, "cell")) /* the type the name finds */
            snprintf(value, sizeof value, "%s", r->cell->name);
        else
            cl_opt_format(&opts[i], &r->cfg, value, sizeof value);
        tg_dist_digest_add(d, name, "%s", value);
    }
    tg_dist_digest_add(d, "--keep-best", "%s", c->keep_best ? "yes" : "no");
    char *v = cl_vocab_utf8(&r->vocab);
    tg_dist_digest_add(d, "vocabulary", "%lld characters, hash %016llx",
                       (long long)r->vocab.n,
                       (unsigned long long)cl_fnv(1469598103934665603ull, v,
                                                  strlen(v)));
    free(v);
    tg_dist_digest_add(d, "the text of --data", "%lld characters, hash %016llx",
                       (long long)r->corpus_chars,
                       (unsigned long long)r->corpus_hash);
    if (c->resume)
        tg_dist_digest_add(d, "the --resume checkpoint", "step %lld, checksum "
                           "%016llx", (long long)r->step,
                           (unsigned long long)r->checksum);
    else
        tg_dist_digest_add(d, "the --resume checkpoint", "none");
    /* the same seed, --init-from or checkpoint gives the same numbers */
    tg_dist_digest_add(d, "the starting weights", "hash %016llx",
                       (unsigned long long)weights_hash(&r->model->params));
}

int cl_ranks_agree_run(const cl_run *r, const cl_config *c, const char *error)
{
    if (tg_dist_size() == 1)
        return error && *error ? cli_fail("%s", error) : 0;
    tg_dist_digest d = {0};
    if (error && *error)
        tg_dist_digest_fail(&d, error);
    else
        describe(r, c, &d);
    return agree(&d, "every rank needs the same build of charlm, the same "
                 "flags, the same --data text and the same --resume checkpoint");
}
