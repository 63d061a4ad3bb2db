/*
 * examples/charlm/charlm.h - the private header of the `charlm` tool:
 * train a character language model, sample from it, evaluate it.
 *
 *   main.c    the command line, errors as one line
 *   opts.c    commands and flags (one table per command: parsing, checking,
 *             --help and checkpoint metadata all come from it; the parser
 *             is examples/common/cli.c, which the other examples share)
 *   corpus.c  the corpus: files or stdin -> UTF-8 -> compact vocabulary ids
 *   data.c    UTF-8, the vocabulary, the train/validation split, B parallel
 *             streams
 *   ckpt.c    checkpoints: weights under PyTorch names plus everything a
 *             resumed run needs to continue bit for bit
 *   ckpt_sum.c  their checksum (alone, so that tests can recompute it)
 *   prepare.c the model, the data and the checks before training starts
 *   train.c   the training loop, progress, the JSON log, Ctrl-C
 *   ranks.c   under MPI, the ranks' command lines and runs compared
 *             before they start
 *   eval.c    the validation loss, and `charlm eval`
 *   sample.c  generation (temperature, top-k, priming)
 *   cells.c   extra cell types known by name (--cell peephole); add yours
 *   interop.c weights in and out for PyTorch: train --init-from, export,
 *             logits
 *
 * The model and the data pipeline are those of
 * scripts/train_torch_charlm.py, the PyTorch reference: same
 * corpus reading, vocabulary, split, streams, truncated BPTT, loss,
 * clipping, optimizers and evaluation, so their numbers can be compared.
 *
 * Errors: functions that can fail return -1 (or NULL) after cli_fail()
 * wrote a one-line message; main() prints it as "charlm CMD: message" and
 * exits with status 1 (2 for a bad command line). Library errors are
 * recorded by an error handler (never aborting on user input) and end up
 * in the same message.
 */
#ifndef CHARLM_H
#define CHARLM_H

#include "examples/common/cli.h"
#include "nn/charlm.h"
#include "nn/optim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Every setting of every command. Numbers that are whole are int64_t so
 * that one parser serves them all. */
typedef struct cl_config {
    /* model */
    const char *cell;
    int64_t layers, hidden, embed;
    double dropout;
    /* data */
    const char *data;
    int64_t seq, batch;
    int64_t blocks;   /* batch cut into blocks summed in an order fixed by
                         G (nn/dist.h); 0: the number of MPI ranks */
    const char *reduce; /* how: "tree", "chain" or "ring" (nn/dist.h) */
    double val_frac;
    /* training */
    const char *optim;
    double lr, clip;
    int64_t seed, steps, eval_every, threads;
    double minutes;
    const char *save, *resume, *log;
    const char *init_from; /* a new run starting from these weights */
    bool overwrite, keep_best;
    /* sampling and evaluation */
    const char *load, *prime;
    const char *out;       /* export's weights file */
    int64_t length, top_k;
    double temperature, top_p;
    /* reading: the most text a corpus may have, in MiB */
    int64_t max_data_mb;
} cl_config;

/* What --version prints after "charlm ". */
#define CL_VERSION "0.1.0"

/* The default of --max-data-mb: 1 GiB of text (1-4 GiB of memory). */
#define CL_MAX_DATA_MB 1024

/* Most flags a command has (main.c's given[] array). */
#define CL_MAX_OPTS 64

/* One flag (examples/common/cli.h: the parser the examples share). Its
 * name is also its key in a checkpoint's metadata; whole numbers are
 * int64_t. */
typedef cli_flag cl_opt;
#define CL_INT CLI_I64
#define CL_REAL CLI_REAL
#define CL_STR CLI_STR
#define CL_SWITCH CLI_SWITCH
enum {
    CL_LO_OPEN = CLI_LO_OPEN, /* the range excludes lo */
    CL_HI_OPEN = CLI_HI_OPEN, /* the range excludes hi */
    CL_NO_DEFAULT = CLI_NO_DEFAULT, /* --help shows no default */
    CL_STORED = CLI_OWN << 0, /* a hyperparameter kept in checkpoints */
    CL_FIXED = CLI_OWN << 1,  /* cannot change on --resume (architecture,
                                 data) */
    CL_NOTE = CLI_OWN << 2,   /* may change on --resume, with a note: the
                                 run is then not the one an uninterrupted
                                 training would have made (--lr, --blocks) */
};
/* On --resume a flag CL_STORED | CL_FIXED must keep the checkpoint's
 * value, one CL_NOTE may take another with a note, and the others (the
 * budget, --eval-every, those not stored) change nothing of the numbers. */

/* opts.c */
typedef struct cl_command {
    const char *name, *usage, *about;
    const cl_opt *opts;
    int nopts;
} cl_command;

const cl_command *cl_command_find(const char *name);
/* The optimizers --optim names, with the hyperparameters charlm gives
 * them besides --lr: a new one is one line of the list (opts.c). */
typedef struct cl_optim {
    const char *name, *note; /* note: for --help, "" or " (...)" */
    tg_optim *(*make)(tg_params *ps, double lr);
} cl_optim;
const cl_optim *cl_optim_find(const char *name); /* NULL: unknown */
void cl_tool_help(FILE *f);
void cl_version(FILE *f);
/* The default of --threads: OMP_NUM_THREADS if set, else the CPUs this
 * process may run on (1 without OpenMP). */
int64_t cl_default_threads(void);
/* Fills c from argv (c holds the defaults); given[i] tells whether
 * cmd->opts[i] was on the line. 1 for --help or --version (printed), 0,
 * or -1 with a message. */
int cl_parse_args(const cl_command *cmd, int argc, char **argv,
                  cl_config *c, bool *given);
void cl_config_defaults(cl_config *c);
/* The train command's flags: the hyperparameters checkpoints store. */
const cl_opt *cl_train_opts(int *n);
/* Parses text as the value of o into c; -1 with a message (context
 * starts it: "--hidden" or "checkpoint X: metadata 'hidden'"). */
int cl_opt_parse(const cl_opt *o, cl_config *c, const char *text,
                 const char *context);
/* The value of o in c as text (what a checkpoint stores). */
void cl_opt_format(const cl_opt *o, const cl_config *c, char *buf,
                   size_t cap);
/* main.c */
/* a shape as text, "[44, 8]" (ckpt.c) */
void cl_shape_text(char *buf, size_t cap, int ndim, const int64_t *shape);
/* A copy of s that lives until exit. */
const char *cl_strdup(const char *s);

/* errors: cli_fail and cli_error (examples/common/cli.h); the library's
 * (main.c): */
/* The last library error ("op: message"), "" if none since the last call
 * of cl_lib_clear. */
const char *cl_lib_error(void);
void cl_lib_clear(void);

/* data.c ---------------------------------------------------------------- */
typedef struct cl_vocab {
    uint32_t *chars; /* sorted Unicode code points */
    int64_t n;
} cl_vocab;

typedef struct cl_text {
    uint32_t *cp; /* code points */
    int64_t n;
} cl_text;

/* A corpus as vocabulary ids, each in width bytes: 1 while the
 * vocabulary has at most 256 characters, 2 up to 65536, else 4. */
typedef struct cl_ids {
    void *data;
    int width;
    int64_t n;
} cl_ids;
static inline uint32_t cl_ids_get(const cl_ids *d, int64_t i)
{
    return d->width == 1 ? ((const uint8_t *)d->data)[i]
         : d->width == 2 ? ((const uint16_t *)d->data)[i]
                         : ((const uint32_t *)d->data)[i];
}

/* B streams of a token sequence, a view into its ids: stream b is
 * ids[b * n .. (b + 1) * n), and row i is element i of every stream. The
 * ids belong to the train streams (owned, freed by cl_streams_free); the
 * val streams borrow them (owned NULL), so free val first or together. */
typedef struct cl_streams {
    const void *ids;  /* the first id of stream 0 */
    int width;        /* bytes per id (cl_ids) */
    int64_t n, B;
    void *owned;
} cl_streams;
/* out[i * B + b] = row pos + i of stream b, for i < len: the [len, B]
 * block a step reads (pos + len <= s->n). */
void cl_streams_rows(const cl_streams *s, int64_t pos, int64_t len,
                     int64_t *out);

/* corpus.c: reads path - a file, every regular file of a directory
 * (sorted by name, skipping *.dat, *.u8 and symbolic links), or "-" for
 * standard input - decoding UTF-8 with Python's universal newlines,
 * straight into ids of v: if v is empty (n == 0) the vocabulary is made
 * from the text, otherwise every character must be in v. progress: say
 * on stderr what a large corpus is doing. -1 with a message for a
 * missing, empty or binary corpus, a FIFO or device, a character not in
 * v, or more than max_mb MiB of bytes; v and ids are then left empty
 * (v only if it was empty). */
int cl_corpus_read(const char *path, int64_t max_mb, bool progress,
                   cl_vocab *v, cl_ids *ids);
void cl_ids_free(cl_ids *ids);
/* Opens path for reading if it is a regular file, never blocking (a
 * FIFO is refused, not waited on); its size in *size. NULL with a message
 * starting with what ("--load ", "") otherwise. */
FILE *cl_open_regular(const char *path, const char *what, int64_t *size);
/* The safetensors file at path, read without blocking on a FIFO and
 * parsed; NULL with a message: "cannot read WHAT PATH: ..." when reading
 * fails, "FAILURE: ..." when the file is not valid. */
tg_st_file *cl_st_read(const char *path, const char *what, const char *failure);
void cl_text_free(cl_text *t);
/* The vocabulary as UTF-8 (for checkpoints) and back (-1: not valid
 * UTF-8, not sorted, repeated, NUL). */
char *cl_vocab_utf8(const cl_vocab *v);
int cl_vocab_parse(const char *utf8, cl_vocab *v);
void cl_vocab_free(cl_vocab *v);
/* The id of code point c, -1 if not in the vocabulary. */
int64_t cl_vocab_id(const cl_vocab *v, uint32_t c);
/* "'x' (U+0078)", or "U+0007" for a character that does not print. */
void cl_char_name(uint32_t c, char *buf, size_t cap);
/* Decodes a UTF-8 string (a --prime); -1 with a message. */
int cl_utf8_decode(const char *s, cl_text *t, const char *what);
/* Decodes the character at s[0..n): its length (1-4) and *cp, or 0 if
 * the bytes are not valid UTF-8 (or end inside the character). */
int cl_utf8_get(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes code point c as UTF-8 into out (4 bytes at most); its length. */
int cl_utf8_put(uint32_t c, char *out);
/* FNV-1a over the ids (each as 8 bytes): tells a resumed run whether its
 * text changed. */
uint64_t cl_ids_hash(const cl_ids *ids);

/* The reference's split: the last max(int(n * val_frac), T * B + 1) ids
 * are held out; both parts cut into B streams. -1 with a message naming
 * what is too small. */
int cl_split(const cl_ids *ids, const cl_config *c, cl_streams *train,
             cl_streams *val, const char *what);
/* The whole text as B streams (what charlm eval --data scores); -1 with a
 * message if the streams would be shorter than 2. */
int cl_streams_whole(const cl_ids *ids, int64_t B, cl_streams *s,
                     const char *what);
void cl_streams_free(cl_streams *s);

/* ckpt.c ---------------------------------------------------------------- */
/* A model with everything around it: what a checkpoint holds. */
typedef struct cl_run {
    cl_config cfg;          /* hyperparameters (those CL_STORED) */
    cl_vocab vocab;
    const tg_cell_type *cell;
    tg_charlm *model;
    tg_optim *opt;          /* NULL outside training */
    tg_rng rng;             /* initialisation, then dropout (as PyTorch's
                               one generator after torch.manual_seed) */
    /* the hidden state carried from step to step (truncated BPTT);
     * has_state false: the next step starts from zeros */
    tg_tensor *state[TG_CELL_MAX_STATE];
    bool has_state;
    int64_t step, pos, tokens;
    double loss_sum;        /* training losses since the last evaluation */
    int64_t loss_count;
    double elapsed_s, val_loss, grad_norm;
    int64_t corpus_chars;
    uint64_t corpus_hash;
    uint64_t checksum;      /* of the checkpoint loaded (0: none) */
} cl_run;

/* prepare.c: builds run->model (and run->opt if with_optim) from
 * run->cfg and run->vocab, initialised from run->cfg.seed. -1 with a
 * message. */
int cl_run_build(cl_run *r, bool with_optim);
void cl_run_free(cl_run *r);
/* Everything before the first step of `charlm train`: a new run from c,
 * or the checkpoint c->resume with the flags that may change; the corpus
 * read, checked against the vocabulary and split; --save checked. -1
 * with a message. */
int cl_prepare(cl_run *r, cl_config *c, const bool *given, const cl_opt *opts,
               int nopts, cl_streams *train, cl_streams *val);
/* What a checkpoint path holds: device, inode, size and modification
 * time (exists false: nothing). A file replaced or written over has
 * another; one only read, linked or chmod-ed keeps it. */
typedef struct cl_path_id {
    bool exists;
    uint64_t dev, ino;
    int64_t size, mtime_ns;
} cl_path_id;
void cl_path_id_get(const char *path, cl_path_id *id);
/* Saves atomically: a crash or a full disk leaves the old file whole.
 * mine (NULL: no check) is what this run expects at path - what was there
 * when it started, then what it last wrote there - and becomes what it
 * writes: if another file has taken its place meanwhile (another run
 * saving to the same path), that file is not replaced; the checkpoint
 * goes to "PATH.<pid>" instead, and -1 with a message naming both. */
int cl_ckpt_save(const cl_run *r, const char *path, cl_path_id *mine);
/* Loads a checkpoint into a fresh run: hyperparameters, vocabulary,
 * model; with_train also the optimizer, RNG states, carried state and
 * counters. -1 with a message naming the file and the problem. */
int cl_ckpt_load(const char *path, cl_run *r, bool with_train);
/* ckpt_sum.c: the checksum a checkpoint of format version 1 (tensors
 * only) or 2 (tensors and every metadata pair but "checksum") carries. */
uint64_t cl_ckpt_checksum(const tg_st_file *f, int version);
/* FNV-1a, 64 bits: h (1469598103934665603 to start) carried over n bytes */
uint64_t cl_fnv(uint64_t h, const void *p, size_t n);
/* Whether path holds a charlm checkpoint; its step in *step. */
bool cl_ckpt_peek(const char *path, int64_t *step);

/* ranks.c: under MPI, every rank takes part before anything else is
 * exchanged, even one that has failed (error: its message; "" when
 * ready), and 0 comes back on every rank when all are ready and agree,
 * -1 on every rank otherwise with the one-line reason as cli_error() (its
 * rank named), for rank 0 to print. First the command lines (what: the
 * command, "train" or "train --help"), then, for training, the runs
 * about to start: build, flags, vocabulary, data, checkpoint, weights. */
int cl_ranks_agree_command(const char *what, const char *error);
int cl_ranks_agree_run(const cl_run *r, const cl_config *c, const char *error);

/* commands (train.c, sample.c, eval.c): process exit status */
int cl_train(cl_config *c, const bool *given, const cl_opt *opts, int nopts);
int cl_sample(const cl_config *c);
int cl_eval(const cl_config *c);
/* validation loss (mean nats per character) of the model on v */
double cl_evaluate(cl_run *r, const cl_streams *v);

/* interop.c: a new run's weights replaced by those of a safetensors file
 * with the model's names and shapes (strict, as PyTorch's
 * load_state_dict: every missing, unexpected or misshapen tensor named;
 * a charlm checkpoint's optim.* and train.* are skipped). -1 with a
 * message. */
int cl_init_from(cl_run *r, const char *path);
/* commands: the weights alone for PyTorch; the scores after each
 * character of --prime */
int cl_export(const cl_config *c);
int cl_logits(const cl_config *c);

/* cells.c: registers the tool's extra cell types */
void cl_register_cells(void);

#endif
