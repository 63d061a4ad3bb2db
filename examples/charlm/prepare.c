/*
 * examples/charlm/prepare.c - getting a run ready: the model built from
 * the hyperparameters (or a checkpoint), the corpus read and split, the
 * flags of a resumed run checked against its checkpoint, and the place
 * to save made sure of - all before the first step, so that a mistake
 * costs seconds, not a training run.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "charlm.h"
#include "nn/dist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the model ----------------------------------------------------------- */

/* Rough peak memory of training, to refuse absurd sizes with a message
 * instead of letting an allocation abort. */
static double train_bytes(const cl_config *c, const tg_cell_type *t, int64_t V)
{
    double G = t->gates ? t->gates : 4, H = (double)c->hidden,
           E = (double)c->embed, L = (double)c->layers, TB = (double)(c->seq * c->batch);
    double params = (double)V * E + G * H * (E + H + 2) +
                    (L - 1) * G * H * (2 * H + 2) + H * (double)V + (double)V;
    double acts = TB * (E + L * (G * H * 3 + H * t->nstate * 6) + 3 * (double)V);
    return 4 * (4 * params + 2 * acts);
}

int cl_run_build(cl_run *r, bool with_optim)
{
    const cl_config *c = &r->cfg;
    char names[200];
    r->cell = tg_cell_type_find(c->cell);
    if (!r->cell)
        return cli_fail("unknown cell type '%s' (known: %s)", c->cell,
                       tg_cell_type_names(names, sizeof names));
    double need = train_bytes(c, r->cell, r->vocab.n);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.8 * have)
        return cli_fail("this model needs about %.1f GB of memory and the "
                       "machine has %.1f GB: use a smaller --hidden, --layers, "
                       "--embed, --seq or --batch", need / 1e9, have / 1e9);
    cl_lib_clear();
    tg_rng_seed(&r->rng, (uint64_t)c->seed);
    r->model = tg_charlm_new(r->cell, (int)r->vocab.n, (int)c->embed,
                             (int)c->hidden, (int)c->layers, c->dropout, &r->rng);
    if (!r->model)
        return cli_fail("cannot build the model: %s", cl_lib_error());
    if (with_optim) {
        const cl_optim *o = cl_optim_find(c->optim);
        r->opt = o ? o->make(&r->model->params, c->lr) : NULL;
        if (!r->opt)
            return cli_fail("cannot make the optimizer: %s", cl_lib_error());
    }
    return 0;
}

void cl_run_free(cl_run *r)
{
    tg_optim_free(r->opt);
    tg_charlm_free(r->model);
    for (int k = 0; k < TG_CELL_MAX_STATE; k++)
        tg_tensor_free(r->state[k]);
    cl_vocab_free(&r->vocab);
    *r = (cl_run){0};
}

/* ---- a training run ---------------------------------------------------- */

/* Flags given with --resume: fixed ones must agree with the checkpoint,
 * the others replace its values - with a note for those that make the run
 * another one (CL_NOTE; --data is told by load_data, from its text). */
static int merge_resume(cl_run *r, const cl_config *c, const bool *given,
                        const cl_opt *opts, int nopts)
{
    bool budget = false;
    for (int i = 0; i < nopts; i++) {
        const cl_opt *o = &opts[i];
        if (!given[i] || !(o->flags & CL_STORED))
            continue;
        char mine[4200], theirs[4200];
        cl_opt_format(o, c, mine, sizeof mine);
        cl_opt_format(o, &r->cfg, theirs, sizeof theirs);
        if (!strcmp(o->name, "blocks") && c->blocks == 0) /* G = N */
            snprintf(mine, sizeof mine, "%d", tg_dist_size());
        bool same = !strcmp(o->name, "cell")
                        ? tg_cell_type_find(c->cell) == tg_cell_type_find(r->cfg.cell)
                        : !strcmp(mine, theirs);
        if ((o->flags & CL_FIXED) && !same)
            return cli_fail("--%s %s conflicts with the checkpoint's %s %s: the "
                           "architecture and the data split cannot change on "
                           "--resume (start a new run with another --save)",
                           o->name, mine, o->name, theirs);
        /* (the tree and the chain make the same additions for G <= 3) */
        int64_t G = r->cfg.blocks ? r->cfg.blocks : tg_dist_size();
        bool alike = !strcmp(o->name, "reduce") && G <= 3 &&
                     strcmp(mine, "ring") && strcmp(theirs, "ring");
        if ((o->flags & CL_NOTE) && !same && !alike &&
            strcmp(o->name, "data") && tg_dist_rank() == 0)
            fprintf(stderr, "charlm train: note: --%s %s replaces the "
                    "checkpoint's %s from step %lld on (not the run an "
                    "uninterrupted training would have made%s)\n", o->name,
                    mine, theirs, (long long)r->step,
                    !strcmp(o->name, "blocks")
                    ? ": the blocks fix the order in which a batch's "
                      "gradients are summed, and with --dropout the numbers "
                      "drawn"
                    : !strcmp(o->name, "reduce")
                    ? ": it fixes the order in which a batch's gradients "
                      "are summed" : "");
        if (!strcmp(o->name, "steps") || !strcmp(o->name, "minutes"))
            budget = true;
        else
            memcpy((char *)&r->cfg + o->off, (const char *)c + o->off,
                   o->kind == CL_INT ? sizeof(int64_t)
                   : o->kind == CL_REAL ? sizeof(double) : sizeof(char *));
    }
    if (budget) { /* a new budget replaces the stored one whole */
        r->cfg.steps = c->steps;
        r->cfg.minutes = c->minutes;
    }
    r->opt->lr = r->cfg.lr;
    if (r->step >= r->cfg.steps)
        return cli_fail("checkpoint %s is already at step %lld of --steps %lld: "
                       "nothing to do (give a larger --steps to train on)",
                       c->resume, (long long)r->step, (long long)r->cfg.steps);
    if (r->cfg.minutes > 0 && r->elapsed_s >= 60 * r->cfg.minutes)
        return cli_fail("checkpoint %s has already trained %.1f of --minutes "
                       "%g: nothing to do (give a larger --minutes, counted "
                       "from the start of the run)", c->resume,
                       r->elapsed_s / 60, r->cfg.minutes);
    return 0;
}

/* --save must not silently replace another run's checkpoint, and its
 * directory must be writable now rather than at the first evaluation. */
static int check_save(const cl_config *c)
{
    struct stat st, rs;
    if (stat(c->save, &st) == 0) { /* stat: never blocks, even on a FIFO */
        if (S_ISDIR(st.st_mode))
            return cli_fail("--save %s is a directory; give a file name", c->save);
        if (!S_ISREG(st.st_mode)) /* not even with --overwrite */
            return cli_fail("--save %s is not a regular file (a FIFO, device "
                           "or socket), and charlm replaces only files: give "
                           "another --save", c->save);
        bool same = c->resume && stat(c->resume, &rs) == 0 &&
                    st.st_dev == rs.st_dev && st.st_ino == rs.st_ino;
        int64_t step;
        if (!same && !c->overwrite) {
            if (cl_ckpt_peek(c->save, &step))
                return cli_fail("%s already holds a checkpoint (step %lld): "
                               "continue it with --resume %s, choose another "
                               "--save, or pass --overwrite to replace it",
                               c->save, (long long)step, c->save);
            return cli_fail("%s already exists and is not a charlm checkpoint: "
                           "choose another --save (or pass --overwrite)", c->save);
        }
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", c->save);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0)
        return cli_fail("cannot write --save %s: directory %s: %s", c->save, dir,
                       strerror(errno));
    return 0;
}

/* reads the corpus, checks it against the vocabulary (made from it for a
 * new run), splits it */
static int load_data(cl_run *r, const char *path, int64_t max_mb,
                     bool resumed, cl_streams *train, cl_streams *val)
{
    cl_ids ids;
    if (cl_corpus_read(path, max_mb, tg_dist_rank() == 0, &r->vocab, &ids) < 0)
        return -1;
    bool in = !strcmp(path, "-");
    const char *what = in ? "standard input" : path;
    int rc = cl_split(&ids, &r->cfg, train, val, what);
    if (rc == 0) {
        uint64_t hash = cl_ids_hash(&ids);
        if (resumed && (hash != r->corpus_hash || ids.n != r->corpus_chars) &&
            tg_dist_rank() == 0) /* every rank has the same: ranks.c */
            fprintf(stderr, "charlm train: note: %s is not the text the "
                    "checkpoint was trained on; continuing on it (not the "
                    "run an uninterrupted training would have made)\n", what);
        r->corpus_hash = hash;
        r->corpus_chars = ids.n;
        char *real = in ? NULL : realpath(path, NULL); /* resumable from anywhere */
        r->cfg.data = cl_strdup(real ? real : path);
        free(real);
        train->owned = ids.data; /* the streams are views into it */
        ids = (cl_ids){0};
    }
    cl_ids_free(&ids);
    return rc;
}

int cl_prepare(cl_run *r, cl_config *c, const bool *given, const cl_opt *opts,
               int nopts, cl_streams *train, cl_streams *val)
{
    if (c->resume) {
        bool data_given = false, save_given = false;
        for (int i = 0; i < nopts; i++) {
            data_given |= given[i] && !strcmp(opts[i].name, "data");
            save_given |= given[i] && !strcmp(opts[i].name, "save");
        }
        if (!save_given) /* a resumed run goes on saving where it was */
            c->save = c->resume;
        if (cl_ckpt_load(c->resume, r, true) < 0 ||
            merge_resume(r, c, given, opts, nopts) < 0)
            return -1;
        if (!data_given && !strcmp(r->cfg.data, "-"))
            return cli_fail("checkpoint %s was trained on standard input: give "
                           "--data FILE, or --data - with the same text",
                           c->resume);
        if (load_data(r, data_given ? c->data : r->cfg.data, c->max_data_mb,
                      true, train, val) < 0)
            return data_given ? -1 : cli_fail("%s (the checkpoint's corpus; "
                                             "--data gives another)", cli_error());
        if (check_save(c) < 0)
            return -1;
    } else {
        r->cfg = *c;
        if (load_data(r, c->data, c->max_data_mb, false, train, val) < 0 ||
            check_save(c) < 0 ||
            cl_run_build(r, true) < 0 ||
            (c->init_from && cl_init_from(r, c->init_from) < 0))
            return -1;
        r->val_loss = (double)NAN;
    }
    /* the blocks of a batch and the ranks that compute them (nn/dist.h) */
    int64_t N = tg_dist_size();
    if (r->cfg.blocks == 0)
        r->cfg.blocks = N;
    if (r->cfg.batch % r->cfg.blocks)
        return cli_fail("--batch %lld cannot be cut into --blocks %lld equal "
                       "blocks: choose G dividing B", (long long)r->cfg.batch,
                       (long long)r->cfg.blocks);
    if (r->cfg.blocks % N)
        return cli_fail("%lld blocks cannot be spread evenly over %lld MPI "
                       "ranks: run a number of ranks dividing %lld, or give "
                       "--blocks (a multiple of %lld; another G is another "
                       "computation)", (long long)r->cfg.blocks, (long long)N,
                       (long long)r->cfg.blocks, (long long)N);
    /* The tree is cut between ranks only for 1, 2, 4, 8 ... of them
     * (nn/dist.h). Other numbers sum in block order, and the checkpoint
     * records that, so that a resume goes on with the same sums. */
    if (!strcmp(r->cfg.reduce, "tree") && !tg_dist_tree_fits((int)N)) {
        if (r->cfg.blocks >= 4 && tg_dist_rank() == 0)
            fprintf(stderr, "charlm train: note: --reduce tree needs 1, 2, 4, "
                    "8 ... ranks (its tree over the %lld blocks is cut "
                    "between them); %lld ranks sum in block order instead "
                    "(--reduce chain, which the checkpoint records: one "
                    "process gives these numbers with --reduce chain)\n",
                    (long long)r->cfg.blocks, (long long)N);
        r->cfg.reduce = "chain";
    }
    return 0;
}

