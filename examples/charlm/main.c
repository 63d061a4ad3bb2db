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
static char lib_buf[1024];

const char *cl_lib_error(void) { return lib_buf[0] ? lib_buf : "unknown error"; }
void cl_lib_clear(void) { lib_buf[0] = 0; }

static void record_lib_error(const char *op, const char *msg, void *ud)
{
    (void)ud;
    if (!lib_buf[0]) /* keep the first: later ones are its consequences */
        snprintf(lib_buf, sizeof lib_buf, "%s: %s", op, msg);
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

/* a message on one line, whatever the library put in it. Under MPI only
 * rank 0 prints, and only what every rank reached together: the ranks'
 * agreement (ranks.c) names a rank that failed alone. */
static void print_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "charlm%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    for (const char *p = msg; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    tg_set_error_handler(record_lib_error, NULL);
    cl_register_cells();
    const cl_command *cmd = argc >= 2 ? cl_command_find(argv[1]) : NULL;
    /* started by mpirun (tg_dist_launched): MPI starts first, so that a
     * rank whose command line is wrong still meets the others and they do
     * not wait for it forever; a build without MPI refuses, once */
    int launch_rank = 0;
    if (tg_dist_launched(&launch_rank) > 0 && tg_dist_init(&argc, &argv) < 0) {
        if (launch_rank == 0)
            print_error(cmd ? cmd->name : NULL, cl_lib_error());
        return 1;
    }
    bool mpi = tg_dist_size() > 1, lead = tg_dist_rank() == 0;
    int status = -1; /* -1: the command runs */
    cl_config c;
    cl_config_defaults(&c);
    bool given[CL_MAX_OPTS] = {false};
    const char *name = argc >= 2 ? argv[1] : "";
    char what[64];
    snprintf(what, sizeof what, "%s", cmd ? cmd->name : name);
    if (argc < 2) {
        if (lead)
            cl_tool_help(stderr);
        cli_fail("no command given (see charlm --help)");
        status = 2;
    } else if (!strcmp(name, "--help") || !strcmp(name, "-h") ||
               !strcmp(name, "help")) {
        if (lead)
            cl_tool_help(stdout);
        status = 0;
    } else if (!strcmp(name, "--version")) {
        if (lead)
            cl_version(stdout);
        status = 0;
    } else if (!cmd) {
        cli_fail("unknown command '%s' (commands: train, sample, eval, export, "
                "logits; see charlm --help)", name);
        status = 2;
    } else {
        if (!strcmp(cmd->name, "eval")) {
            c.data = NULL;      /* the checkpoint's corpus */
            c.val_frac = -1;    /* not given: the whole --data, or as trained */
        }
        int rc = cl_parse_args(cmd, argc - 2, argv + 2, &c, given);
        if (rc == 1) { /* --help or --version, printed */
            snprintf(what, sizeof what, "%s --help", cmd->name);
            status = 0;
        } else if (rc < 0) {
            status = 2;
        }
    }
    /* under MPI the ranks compare their command lines before anything else */
    if (mpi && cl_ranks_agree_command(what, status > 0 ? cli_error() : "") < 0) {
        if (lead)
            print_error(cmd ? cmd->name : NULL, cli_error());
        tg_dist_finalize();
        return status > 0 ? status : 1;
    }
    if (mpi && status < 0 && strcmp(cmd->name, "train") != 0) {
        if (lead) /* every rank: the same command */
            print_error(cmd->name, "runs in one process; only train spreads "
                        "over MPI ranks");
        tg_dist_finalize();
        return 2;
    }
    if (status > 0) { /* (without a command, the help said it all) */
        if (argc >= 2)
            print_error(cmd ? cmd->name : NULL, cli_error());
        return status;
    }
    if (status == 0) {
        tg_dist_finalize();
        return 0;
    }
    tg_set_num_threads((int)c.threads);
    if (!strcmp(cmd->name, "train"))
        status = cl_train(&c, given, cmd->opts, cmd->nopts);
    else if (!strcmp(cmd->name, "sample"))
        status = cl_sample(&c);
    else if (!strcmp(cmd->name, "export"))
        status = cl_export(&c);
    else if (!strcmp(cmd->name, "logits"))
        status = cl_logits(&c);
    else
        status = cl_eval(&c);
    /* under MPI every failure that returns here is one every rank reached
     * together (the others end the job with tg_dist_abort): rank 0 tells */
    if (status == 1 && lead)
        print_error(cmd->name, cli_error());
    tg_tape_free_all();
    tg_dist_finalize();
    return status;
}
