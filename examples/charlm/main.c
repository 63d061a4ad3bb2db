/*
 * examples/charlm/main.c - the `charlm` command line: picks the command,
 * runs it, and turns every error into one line on stderr.
 *
 *   charlm train  [options]              learn from a text corpus
 *   charlm sample --load CKPT [options]  generate text
 *   charlm eval   --load CKPT [options]  validation loss
 *   charlm export --load CKPT --out FILE the weights, for PyTorch
 *   charlm logits --load CKPT --prime T  the scores after each character
 *
 * (The flags and --help are in opts.c.) Exit status: 0 done, 1 an error in the data, a file or training (the
 * message says which), 2 a bad command line, 130 (143) stopped by Ctrl-C
 * (SIGTERM) after saving.
 */
#include "charlm.h"
#include "nn/dist.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors -------------------------------------------------------------
 * The library reports misuse through tg_error; by default that aborts.
 * Here a handler records the message instead, the failing call returns
 * NULL or -1, and the caller turns the record into its one-line message. */
static char err_buf[2048], lib_buf[1024];

int cl_fail(const char *fmt, ...)
{
    char buf[sizeof err_buf]; /* the arguments may include cl_error() */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(err_buf, buf, sizeof buf);
    return -1;
}

const char *cl_error(void) { return err_buf; }
const char *cl_lib_error(void) { return lib_buf[0] ? lib_buf : "unknown error"; }
void cl_lib_clear(void) { lib_buf[0] = 0; }

static void record_lib_error(const char *op, const char *msg, void *ud)
{
    (void)ud;
    if (!lib_buf[0]) /* keep the first: later ones are its consequences */
        snprintf(lib_buf, sizeof lib_buf, "%s: %s", op, msg);
}

void cl_shortest(char *buf, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "%s", isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* strings read from checkpoints live until exit */
static char **owned;
static size_t n_owned;

static void free_owned(void)
{
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
}

const char *cl_strdup(const char *s)
{
    if (!n_owned)
        atexit(free_owned);
    owned = tg_xrealloc(owned, (n_owned + 1) * sizeof *owned);
    size_t n = strlen(s) + 1;
    owned[n_owned] = memcpy(tg_xmalloc(n), s, n);
    return owned[n_owned++];
}

/* a message on one line, whatever the library put in it */
static void print_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "charlm%s%s", cmd ? " " : "", cmd ? cmd : "");
    if (tg_dist_size() > 1)
        fprintf(stderr, " (rank %d of %d)", tg_dist_rank(), tg_dist_size());
    fputs(": ", stderr);
    for (const char *p = msg; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    tg_set_error_handler(record_lib_error, NULL);
    cl_register_cells();
    if (argc < 2) {
        cl_tool_help(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        cl_tool_help(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        cl_version(stdout);
        return 0;
    }
    const cl_command *cmd = cl_command_find(name);
    if (!cmd) {
        cl_fail("unknown command '%s' (commands: train, sample, eval, export, "
                "logits; see charlm --help)", name);
        print_error(NULL, cl_error());
        return 2;
    }
    cl_config c;
    cl_config_defaults(&c);
    if (!strcmp(cmd->name, "eval")) {
        c.data = NULL;      /* the checkpoint's corpus */
        c.val_frac = -1;    /* not given: the whole --data, or as trained */
    }
    bool given[CL_MAX_OPTS] = {false};
    int rc = cl_parse_args(cmd, argc - 2, argv + 2, &c, given);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        print_error(cmd->name, cl_error());
        return 2;
    }
    tg_set_num_threads((int)c.threads);
    /* started by mpirun (Open MPI or MPICH): one of several ranks */
    if ((getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) &&
        tg_dist_init(&argc, &argv) < 0) {
        print_error(cmd->name, cl_lib_error());
        return 1;
    }
    int status;
    if (tg_dist_size() > 1 && strcmp(cmd->name, "train") != 0) {
        cl_fail("runs in one process; only train spreads over MPI ranks");
        status = 2;
        if (tg_dist_rank() == 0)
            print_error(cmd->name, cl_error());
    } else if (!strcmp(cmd->name, "train")) {
        status = cl_train(&c, given, cmd->opts, cmd->nopts);
    } else if (!strcmp(cmd->name, "sample")) {
        status = cl_sample(&c);
    } else if (!strcmp(cmd->name, "export")) {
        status = cl_export(&c);
    } else if (!strcmp(cmd->name, "logits")) {
        status = cl_logits(&c);
    } else {
        status = cl_eval(&c);
    }
    /* under MPI every rank meets the same errors (same flags, files and
     * numbers): rank 0 tells; a failure of one rank alone ends the job
     * through tg_dist_abort, which names its rank */
    if (status == 1 && tg_dist_rank() == 0)
        print_error(cmd->name, cl_error());
    tg_tape_free_all();
    tg_dist_finalize();
    return status;
}
