/*
 * examples/charlm/opts.c - the commands and their flags, as tables.
 *
 * Each command's flags are one table of cl_opt: the parser, the range
 * checks, the --help text and the checkpoint metadata are all made from
 * it, so a flag is added in one place. The training hyperparameters are
 * stored in checkpoints under their flag names ("hidden", "val-frac") and
 * read back with the same parser and the same checks (ckpt.c). The parser
 * itself (the loop over the arguments, values by kind, their messages) is
 * examples/common/cli.c, shared with the other examples.
 */
#include "charlm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The most threads used unless asked for more: beyond a few, charlm's
 * models have too little work per step to share. */
#define CL_MAX_DEFAULT_THREADS 8

/* ---- the flags ---------------------------------------------------------- */
#define OFF(f) offsetof(cl_config, f)
#define BIG CLI_BIG /* "no limit" for counts */

void cl_config_defaults(cl_config *c)
{
    /* scripts/train_torch_charlm.py has the same */
    *c = (cl_config){
        .cell = "lstm", .layers = 2, .hidden = 128, .embed = 64,
        .dropout = 0, .data = "/usr/share/games/fortunes", .seq = 64,
        .batch = 32, .blocks = 0, .reduce = "tree", .val_frac = 0.05,
        .optim = "adam", .lr = 2e-3,
        .clip = 5, .seed = 1, .steps = 500, .eval_every = 100,
        .threads = cl_default_threads(), .minutes = 0,
        .save = "charlm.safetensors", .length = 500, .top_k = 0,
        .temperature = 1.0, .top_p = 1.0, .max_data_mb = CL_MAX_DATA_MB};
}

int64_t cl_default_threads(void)
{
#ifdef _OPENMP
    /* OMP_NUM_THREADS as OpenMP reads it: the first number of a list */
    const char *env = getenv("OMP_NUM_THREADS");
    char *end;
    long n = env ? strtol(env, &end, 10) : 0;
    if (env && end != env && (*end == 0 || *end == ',') && n >= 1 && n <= 1024)
        return n;
    /* else every CPU this process may use: the governor (tensor/threads.c)
     * drops to one thread while other processes keep them busy */
    n = omp_get_num_procs();
    return n < 1 ? 1 : n > CL_MAX_DEFAULT_THREADS ? CL_MAX_DEFAULT_THREADS : n;
#else
    return 1;
#endif
}

static const cl_opt train_opts[] = {
    {"data", "FILE|DIR|-", CL_STR, OFF(data), 0, 0, CL_STORED | CL_NOTE,
     "text to learn: a UTF-8 file, a directory whose files (sorted, "
     "skipping *.dat, *.u8 and links) are concatenated, or - for standard "
     "input"},
    {"cell", "NAME", CL_STR, OFF(cell), 0, 0, CL_STORED | CL_FIXED,
     "recurrent cell: lstm, gru, rnn or any registered cell type"},
    {"layers", "N", CL_INT, OFF(layers), 1, 64, CL_STORED | CL_FIXED,
     "recurrent layers"},
    {"hidden", "H", CL_INT, OFF(hidden), 1, 8192, CL_STORED | CL_FIXED,
     "hidden units per layer"},
    {"embed", "E", CL_INT, OFF(embed), 1, 8192, CL_STORED | CL_FIXED,
     "embedding size"},
    {"seq", "T", CL_INT, OFF(seq), 1, 100000, CL_STORED | CL_FIXED,
     "characters per step and stream (truncated BPTT length)"},
    {"batch", "B", CL_INT, OFF(batch), 1, 100000, CL_STORED | CL_FIXED,
     "parallel streams"},
    {"blocks", "G", CL_INT, OFF(blocks), 0, 100000, CL_STORED | CL_NOTE,
     "compute each batch as G blocks of B/G streams whose gradients are "
     "summed in an order fixed by G: the same G gives the same numbers on "
     "any number of MPI ranks dividing it (a power of two with --reduce "
     "tree; mpirun -np N charlm train; 0: G = N)"},
    {"reduce", "HOW", CL_STR, OFF(reduce), 0, 0, CL_STORED | CL_NOTE,
     "how the blocks' gradients are summed over the ranks: tree (a fixed "
     "tree over the G blocks: the numbers of 1 process on 2, 4, 8 ... "
     "ranks; other numbers of ranks use the chain, with a note), chain (in "
     "block order: the same numbers on any number of ranks dividing G, "
     "slower at many ranks) or ring (MPI_Allreduce, the MPI library's own "
     "algorithm: its numbers depend on the number of ranks). tree and "
     "chain differ from G = 4 on"},
    {"steps", "N", CL_INT, OFF(steps), 1, BIG, CL_STORED,
     "train until step N (counted from the start of the run, also after "
     "--resume)"},
    {"minutes", "M", CL_REAL, OFF(minutes), 0, 1e7, CL_STORED | CL_NO_DEFAULT,
     "train until M minutes have passed in total (alone: no step limit)"},
    {"optim", "NAME", CL_STR, OFF(optim), 0, 0, CL_STORED | CL_FIXED,
     "optimizer (the list is made from optims[], below)"},
    {"lr", "X", CL_REAL, OFF(lr), 0, 1e300, CL_STORED | CL_NOTE, "learning rate"},
    {"clip", "X", CL_REAL, OFF(clip), -1e300, 1e300, CL_STORED | CL_NOTE,
     "clip the global gradient norm to X (0 or less: no clipping)"},
    {"dropout", "P", CL_REAL, OFF(dropout), 0, 1, CL_STORED | CL_FIXED | CL_HI_OPEN,
     "dropout probability between layers and before the decoder"},
    {"seed", "S", CL_INT, OFF(seed), 0, 9e18, CL_STORED | CL_FIXED,
     "seed of initialisation and dropout"},
    {"threads", "N", CL_INT, OFF(threads), 1, 1024, 0,
     "threads; results are the same for any number, and fewer are used "
     "while other processes keep the CPUs busy; by default OMP_NUM_THREADS "
     "if set, else the CPUs available, at most 8"},
    {"max-data-mb", "MIB", CL_INT, OFF(max_data_mb), 1, 1e9, 0,
     "refuse a corpus of more than MIB MiB (memory: 1 byte per character "
     "for up to 256 distinct characters, else 2 or 4)"},
    {"val-frac", "F", CL_REAL, OFF(val_frac), 0, 1, CL_STORED | CL_FIXED | CL_HI_OPEN,
     "fraction of the text held out for validation (at least T*B+1 "
     "characters)"},
    {"eval-every", "N", CL_INT, OFF(eval_every), 1, BIG, CL_STORED,
     "evaluate, log and save every N steps (and at the end)"},
    {"save", "CKPT", CL_STR, OFF(save), 0, 0, 0,
     "checkpoint to write at each evaluation, at the end and on Ctrl-C; "
     "a file put there by another run meanwhile is not replaced: the "
     "checkpoint then goes to CKPT.<pid>, and the run stops with status 1"},
    {"resume", "CKPT", CL_STR, OFF(resume), 0, 0, CL_NO_DEFAULT,
     "continue the run saved in CKPT exactly where it stopped"},
    {"init-from", "FILE", CL_STR, OFF(init_from), 0, 0, CL_NO_DEFAULT,
     "start a new run from the weights in FILE (any safetensors file with "
     "the model's PyTorch names and shapes, e.g. from charlm export or "
     "PyTorch; the architecture comes from the flags, the vocabulary from "
     "--data: if FILE records its own, as export does, the rows are mapped "
     "by character - new ones start afresh, missing ones are left out - "
     "and a line says so; if not, its rows are taken in order)"},
    {"log", "FILE|-", CL_STR, OFF(log), 0, 0, CL_NO_DEFAULT,
     "append one JSON line per evaluation to FILE (-: to stdout, instead "
     "of the readable lines); if a line cannot be written (a full disk, a "
     "closed pipe) the run stops after saving, naming the error (status 1)"},
    {"keep-best", NULL, CL_SWITCH, OFF(keep_best), 0, 0, CL_NO_DEFAULT,
     "also keep the checkpoint of the lowest validation loss, as CKPT with "
     ".best before its extension (model.best.safetensors)"},
    {"overwrite", NULL, CL_SWITCH, OFF(overwrite), 0, 0, CL_NO_DEFAULT,
     "allow --save (and its .best) to replace a file that is not the "
     "--resume checkpoint"},
};

static const cl_opt sample_opts[] = {
    {"load", "CKPT", CL_STR, OFF(load), 0, 0, CL_NO_DEFAULT,
     "checkpoint to sample from"},
    {"length", "N", CL_INT, OFF(length), 0, 1e9, 0,
     "characters to generate"},
    {"temperature", "X", CL_REAL, OFF(temperature), 0, 1e6, 0,
     "divides the scores: < 1 safer, > 1 wilder; 0: greedy, always the "
     "likeliest character"},
    {"top-k", "K", CL_INT, OFF(top_k), 0, 1e9, 0,
     "draw only among the K likeliest characters (0: all)"},
    {"top-p", "P", CL_REAL, OFF(top_p), 0, 1, CL_LO_OPEN,
     "nucleus sampling: draw only among the likeliest characters whose "
     "probabilities sum to P (1: all)"},
    {"prime", "TEXT", CL_STR, OFF(prime), 0, 0, CL_NO_DEFAULT | CLI_DASHES,
     "text to start from (printed first; characters the model does not "
     "know are skipped with a warning; default: a newline)"},
    {"seed", "S", CL_INT, OFF(seed), 0, 9e18, 0,
     "seed of the draws: the same seed gives the same text"},
    {"threads", "N", CL_INT, OFF(threads), 1, 1024, 0, "threads"},
};

static const cl_opt eval_opts[] = {
    {"load", "CKPT", CL_STR, OFF(load), 0, 0, CL_NO_DEFAULT,
     "checkpoint to evaluate"},
    {"data", "FILE|DIR|-", CL_STR, OFF(data), 0, 0, CL_NO_DEFAULT,
     "text to score, all of it (- : standard input; default: the held-out "
     "part of the training corpus)"},
    {"val-frac", "F", CL_REAL, OFF(val_frac), 0, 1, CL_NO_DEFAULT | CL_HI_OPEN,
     "score only the last F of the text (at least T*B+1 characters), as "
     "training holds it out"},
    {"max-data-mb", "MIB", CL_INT, OFF(max_data_mb), 1, 1e9, 0,
     "refuse a corpus of more than MIB MiB"},
    {"threads", "N", CL_INT, OFF(threads), 1, 1024, 0, "threads"},
};

static const cl_opt export_opts[] = {
    {"load", "CKPT", CL_STR, OFF(load), 0, 0, CL_NO_DEFAULT,
     "checkpoint whose weights to export"},
    {"out", "FILE", CL_STR, OFF(out), 0, 0, CL_NO_DEFAULT,
     "safetensors file to write (the weights only)"},
    {"overwrite", NULL, CL_SWITCH, OFF(overwrite), 0, 0, CL_NO_DEFAULT,
     "allow --out to replace an existing file"},
};

static const cl_opt logits_opts[] = {
    {"load", "CKPT", CL_STR, OFF(load), 0, 0, CL_NO_DEFAULT,
     "checkpoint to run"},
    {"prime", "TEXT", CL_STR, OFF(prime), 0, 0, CL_NO_DEFAULT | CLI_DASHES,
     "text to feed, from a zero state"},
    {"threads", "N", CL_INT, OFF(threads), 1, 1024, 0, "threads"},
};

/* ---- the optimizers ------------------------------------------------------ */
static tg_optim *make_adam(tg_params *ps, double lr)
{
    return tg_adam_new(ps, lr, 0.9, 0.999, 1e-8, 0);
}

static tg_optim *make_adamw(tg_params *ps, double lr)
{
    /* torch.optim.AdamW's defaults */
    return tg_adamw_new(ps, lr, 0.9, 0.999, 1e-8, 0.01);
}

static tg_optim *make_sgd(tg_params *ps, double lr)
{
    return tg_sgd_new(ps, lr, 0, 0, 0, false);
}

static const cl_optim optims[] = {
    {"adam", "", make_adam},
    {"adamw", " (weight decay 0.01)", make_adamw},
    {"sgd", "", make_sgd},
};

#define COUNT(a) (int)(sizeof(a) / sizeof *(a))

const cl_optim *cl_optim_find(const char *name)
{
    for (int i = 0; i < COUNT(optims); i++)
        if (!strcmp(optims[i].name, name))
            return &optims[i];
    return NULL;
}

/* "adam, adamw or sgd", with their notes if asked */
static const char *optim_names(char *buf, size_t cap, bool notes)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < COUNT(optims) && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s%s", i == 0 ? ""
                              : i == COUNT(optims) - 1 ? " or " : ", ",
                              optims[i].name, notes ? optims[i].note : "");
    return buf;
}

_Static_assert(COUNT(train_opts) <= CL_MAX_OPTS, "raise CL_MAX_OPTS");

const cl_opt *cl_train_opts(int *n)
{
    *n = COUNT(train_opts);
    return train_opts;
}

/* values are worded as charlm always did: "--hidden must be in [1, 8192]
 * (got 0)"; the messages name the command (see charlm train --help) */
static cli_spec spec_of(const cl_command *cmd)
{
    static char prog[32];
    snprintf(prog, sizeof prog, "charlm %s", cmd ? cmd->name : "train");
    return (cli_spec){prog, NULL, cmd ? cmd->opts : NULL,
                      cmd ? cmd->nopts : 0, CLI_MUST, NULL, NULL};
}

int cl_opt_parse(const cl_opt *o, cl_config *c, const char *text,
                 const char *context)
{
    cli_spec spec = spec_of(NULL);
    if (cli_value(&spec, o, c, text, context) < 0)
        return -1; /* cli_error() says why */
    return 0;
}

void cl_opt_format(const cl_opt *o, const cl_config *c, char *buf, size_t cap)
{
    cli_format(o, c, buf, cap);
}

/* ---- help --------------------------------------------------------------- */
static const cl_command commands[] = {
    {"train", "charlm train [options]",
     "Trains a character language model (Embedding -> recurrent layers ->\n"
     "Dropout -> Linear) on a text corpus, like the PyTorch reference\n"
     "scripts/train_torch_charlm.py, and saves checkpoints that\n"
     "--resume continues exactly. Prints one line per evaluation on stdout\n"
     "(step, losses in nats and bits/char, tokens/s, time to go), and a\n"
     "live progress line on stderr when it is a terminal; --log FILE writes\n"
     "the same as JSON lines (--log - to stdout, instead of the readable\n"
     "lines). Ctrl-C finishes the step (or the evaluation), saves and\n"
     "exits (status 130; 143 for SIGTERM).",
     train_opts, COUNT(train_opts)},
    {"sample", "charlm sample --load CKPT [options]",
     "Writes --length characters generated by the model to stdout (UTF-8),\n"
     "after the --prime text if one is given, and a newline if the text\n"
     "does not end with one. The same seed gives the same text.",
     sample_opts, COUNT(sample_opts)},
    {"eval", "charlm eval --load CKPT [options]",
     "Prints the loss of a checkpoint in nats and in bits per character.\n"
     "Without --data: on the held-out end of its training corpus, split as\n"
     "in training (the validation loss training reported). With --data: on\n"
     "the whole text, cut into the model's --batch streams (the first\n"
     "character of each and the last few are not predicted), or on its\n"
     "last --val-frac.",
     eval_opts, COUNT(eval_opts)},
    {"export", "charlm export --load CKPT --out FILE [--overwrite]",
     "Writes the model's weights alone to a safetensors file, under\n"
     "PyTorch's names (embedding.weight, rnn.weight_ih_l0, ...,\n"
     "decoder.bias), float32, for model.load_state_dict(strict=True); the\n"
     "architecture and vocabulary go into its metadata. The file is written\n"
     "to a temporary and renamed: never half-written. The way back is\n"
     "charlm train --init-from FILE.",
     export_opts, COUNT(export_opts)},
    {"logits", "charlm logits --load CKPT --prime TEXT",
     "Feeds TEXT to the model from a zero state and prints, for each of its\n"
     "characters, one line of the vocabulary's scores (logits) for the next\n"
     "character: for comparing with another implementation.",
     logits_opts, COUNT(logits_opts)},
};

/* text wrapped at 72 columns */
static void wrap(FILE *f, const char *text)
{
    int col = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        int len = (int)strcspn(p, " ");
        if (col && col + 1 + len > 72) {
            fputc('\n', f);
            col = 0;
        }
        col += fprintf(f, "%s%.*s", col ? " " : "", len, p);
        p += len;
    }
    fputc('\n', f);
}

/* "--a, --b and --c": the train flags with these flags set and those
 * clear (the two commands' own --resume and --init-from left out) */
static void flag_list(char *buf, size_t cap, unsigned set, unsigned clear)
{
    int n = 0, count = 0;
    for (int i = 0; i < COUNT(train_opts); i++) {
        const cl_opt *o = &train_opts[i];
        count += (o->flags & set) == set && !(o->flags & clear) &&
                 strcmp(o->name, "resume") && strcmp(o->name, "init-from");
    }
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < COUNT(train_opts) && k < cap; i++) {
        const cl_opt *o = &train_opts[i];
        if ((o->flags & set) != set || (o->flags & clear) ||
            !strcmp(o->name, "resume") || !strcmp(o->name, "init-from"))
            continue;
        n++;
        k += (size_t)snprintf(buf + k, cap - k, "%s--%s", n == 1 ? ""
                              : n == count ? " and " : ", ", o->name);
    }
}

/* What --resume lets change, from the flags of the table. */
static void resume_help(FILE *f)
{
    char fixed[400], noted[200], same[200], other[400], text[2400];
    flag_list(fixed, sizeof fixed, CL_STORED | CL_FIXED, 0);
    flag_list(noted, sizeof noted, CL_NOTE, 0);
    flag_list(same, sizeof same, CL_STORED, CL_FIXED | CL_NOTE);
    flag_list(other, sizeof other, 0, CL_STORED);
    snprintf(text, sizeof text, "On --resume the flags stored in the "
             "checkpoint keep its values unless given. %s cannot change (the "
             "model, the split, the optimizer and the random draws: another "
             "value is an error). %s may, with a note saying that the run is "
             "then not the one an uninterrupted training would have made "
             "(--data if its text differs; --blocks and --reduce fix the "
             "order in which a batch's gradients are summed, so another G or "
             "another way changes the numbers too). %s, and %s, which are not stored, change nothing "
             "of the numbers; --steps and --minutes count from the start of "
             "the run, and --save defaults to the checkpoint resumed.",
             fixed, noted, same, other);
    wrap(f, text);
}

static void command_help(const cl_command *cmd, FILE *f)
{
    cl_config d;
    cl_config_defaults(&d);
    fprintf(f, "usage: %s\n\n%s\n\n", cmd->usage, cmd->about);
    if (cmd->opts == train_opts) {
        resume_help(f);
        fputc('\n', f);
    }
    fprintf(f, "options:\n");
    for (int i = 0; i < cmd->nopts; i++) {
        const cl_opt *o = &cmd->opts[i];
        char flag[48], text[600], v[40], names[200];
        snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        cl_opt_format(o, &d, v, sizeof v);
        if (!strcmp(o->name, "cell"))
            snprintf(text, sizeof text, "recurrent cell: %s; rnn means "
                     "rnn_tanh (default %s)",
                     tg_cell_type_names(names, sizeof names), v);
        else if (!strcmp(o->name, "optim"))
            snprintf(text, sizeof text, "optimizer: %s (default %s)",
                     optim_names(names, sizeof names, true), v);
        else if (o->flags & CL_NO_DEFAULT)
            snprintf(text, sizeof text, "%s", o->help);
        else
            snprintf(text, sizeof text, "%s (default %s)", o->help, v);
        cli_help_line(f, flag, text);
    }
    cli_help_line(f, "--help", "this text");
    cli_help_line(f, "--version", "the version of charlm");
}

void cl_version(FILE *f)
{
    fprintf(f, "charlm " CL_VERSION " (tapegrad, %s, %s)\n",
#ifdef _OPENMP
            "OpenMP",
#else
            "built without OpenMP",
#endif
#ifdef TG_DOUBLE
            "float64"
#else
            "float32"
#endif
            );
}

void cl_tool_help(FILE *f)
{
    fprintf(f,
        "charlm - character language models with tapegrad\n\n"
        "usage:\n"
        "  charlm train [options]               train on a corpus, save a checkpoint\n"
        "  charlm sample --load CKPT [options]  generate text from a checkpoint\n"
        "  charlm eval --load CKPT [options]    validation loss of a checkpoint\n"
        "  charlm export --load CKPT --out FILE the weights alone, for PyTorch\n"
        "  charlm logits --load CKPT --prime T  the scores after each character\n"
        "  charlm COMMAND --help                the options of a command\n"
        "  charlm --version                     the version\n\n"
        "A first run (2-layer LSTM on /usr/share/games/fortunes, Debian package\n"
        "`fortunes`; about two minutes on two cores):\n"
        "  charlm train --minutes 2                  # writes charlm.safetensors\n"
        "  charlm sample --load charlm.safetensors --length 500\n"
        "  charlm train --resume charlm.safetensors --minutes 4   # two more\n\n"
        "Checkpoints are safetensors files. The weights have PyTorch's names\n"
        "(embedding.weight, rnn.weight_ih_l0, ..., decoder.bias); the training\n"
        "state is under optim.* and train.*. For PyTorch, `charlm export`\n"
        "writes the weights alone, and `charlm train --init-from FILE` starts\n"
        "from weights made or edited there (tapegrad's scripts/charlm_model.py\n"
        "and scripts/safetensors_torch.py need nothing but PyTorch).\n");
}

/* ---- parsing a command line --------------------------------------------- */
/* checks that need more than one flag, or the cell registry */
static int check_config(const cl_command *cmd, cl_config *c, const bool *given)
{
    if (!strcmp(cmd->name, "train")) {
        char names[200];
        if (!tg_cell_type_find(c->cell))
            return cli_fail("--cell: unknown cell type '%s' (known: %s)", c->cell,
                           tg_cell_type_names(names, sizeof names));
        if (!cl_optim_find(c->optim))
            return cli_fail("--optim: unknown optimizer '%s' (%s)", c->optim,
                           optim_names(names, sizeof names, false));
        if (strcmp(c->reduce, "tree") && strcmp(c->reduce, "chain") &&
            strcmp(c->reduce, "ring"))
            return cli_fail("--reduce: unknown way of summing '%s' (tree, "
                            "chain or ring)", c->reduce);
        /* a budget given alone replaces the other */
        bool steps = false, minutes = false;
        for (int i = 0; i < cmd->nopts; i++) {
            steps |= given[i] && !strcmp(cmd->opts[i].name, "steps");
            minutes |= given[i] && !strcmp(cmd->opts[i].name, "minutes");
        }
        if (minutes && !(c->minutes > 0))
            return cli_fail("--minutes must be more than 0 (got %g)", c->minutes);
        if (minutes && !steps)
            c->steps = (int64_t)BIG;
        if (c->init_from && c->resume)
            return cli_fail("--init-from starts a new run and --resume continues "
                           "one: give one of them");
    } else if (!c->load) {
        return cli_fail("--load CKPT is required (the checkpoint to %s)",
                       !strcmp(cmd->name, "eval") ? "evaluate"
                       : !strcmp(cmd->name, "sample") ? "sample from"
                       : !strcmp(cmd->name, "export") ? "export" : "run");
    } else if (!strcmp(cmd->name, "export") && !c->out) {
        return cli_fail("--out FILE is required (the weights file to write)");
    } else if (!strcmp(cmd->name, "logits") && !c->prime) {
        return cli_fail("--prime TEXT is required (the text to feed)");
    }
    return 0;
}

int cl_parse_args(const cl_command *cmd, int argc, char **argv,
                  cl_config *c, bool *given)
{
    cli_spec spec = spec_of(cmd);
    int rc = cli_parse(&spec, argc, argv, c, given);
    if (rc == 1)
        command_help(cmd, stdout);
    else if (rc == 2)
        cl_version(stdout);
    if (rc != 0)
        return rc < 0 ? -1 : 1; /* cli_error() says why */
    return check_config(cmd, c, given);
}

const cl_command *cl_command_find(const char *name)
{
    for (int i = 0; i < COUNT(commands); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}
