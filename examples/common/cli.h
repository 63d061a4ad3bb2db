/*
 * examples/common/cli.h - the examples' command lines: one table of flags
 * per program (or per charlm command), parsed by one loop, and checked
 * numbers and lists from flag values; and a clock.
 *
 * A program lists its flags, each with its field in the program's options
 * struct (by offset), its range and its help, and calls cli_parse_or_exit
 * (charlm calls cli_parse, which returns its error instead):
 *
 *     typedef struct opts { int T; double lr; const char *out; } opts;
 *     static const cli_flag flags[] = {
 *         {"T", "N", CLI_INT, offsetof(opts, T), 2, 100000, 0, NULL},
 *         {"lr", "X", CLI_REAL, offsetof(opts, lr), 1e-12, 0, 0, NULL},
 *         {"out", "DIR", CLI_STR, offsetof(opts, out), 0, 0, 0, NULL},
 *     };
 *     static const cli_spec spec = {"gradflow", usage_text, flags,
 *                                   CLI_COUNT(flags)};
 *     opts o = {.T = 100, .lr = 1e-2, .out = "build"};  // the defaults
 *     cli_parse_or_exit(&spec, argc, argv, &o);
 *
 * A bad value gives one line, "PROG: --T wants an integer in [2, 100000],
 * got 'x'", and status 2; --help (or -h) prints the help and exits 0.
 * Flags whose value needs more than a range (a list, a choice, a preset
 * that sets several fields) are CLI_SET: a function of the spec's set[]
 * takes the value instead of a field.
 */
#ifndef EXAMPLES_COMMON_CLI_H
#define EXAMPLES_COMMON_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What a flag's value is, and the type of its field. */
typedef enum cli_kind {
    CLI_INT,    /* int, in [lo, hi] */
    CLI_LONG,   /* long (or unsigned long when lo >= 0), in [lo, hi] */
    CLI_I64,    /* int64_t, in [lo, hi] */
    CLI_REAL,   /* double, finite, >= lo (and <= hi, when hi > lo) */
    CLI_STR,    /* const char *, pointing into argv */
    CLI_SWITCH, /* bool set to true; takes no value */
    CLI_SET     /* the flag's set function takes it (no field) */
} cli_kind;

enum {
    CLI_LO_OPEN = 1u << 0,    /* the range excludes lo */
    CLI_HI_OPEN = 1u << 1,    /* the range excludes hi */
    CLI_NO_DEFAULT = 1u << 2, /* a generated --help shows no default */
    CLI_DASHES = 1u << 3,     /* the value may start with -- (a text) */
    CLI_MANY = 1u << 4,       /* CLI_SET: takes every argument up to the
                                 next one starting with --, one set call
                                 each (NULL once when there is none) */
    CLI_OWN = 1u << 8         /* the program's own bits start here */
};

typedef struct cli_flag {
    const char *name;    /* without "--" */
    const char *metavar; /* "N", "FILE"; NULL: the flag takes no value */
    cli_kind kind;
    size_t off;          /* offsetof(options, field) */
    double lo, hi;       /* the range of a number */
    unsigned flags;
    const char *help;    /* for a help made from the table (charlm) */
} cli_flag;

/* A CLI_SET flag's function (the flag's off is its index in the spec's
 * set[]): takes value (NULL: none was given) into cfg; 0, or -1 after
 * cli_fail (CLI_MANY: 1, it takes no more: the argument is not
 * consumed). */
typedef int (*cli_set_fn)(void *cfg, const char *value);

/* How messages about values are worded. */
typedef enum cli_words {
    CLI_WANTS, /* "--T wants an integer in [2, 100000], got 'x'"; a flag's
                  value is the next argument, whatever it is */
    CLI_MUST   /* charlm's: "--hidden: 'x' is not a whole number", "--hidden
                  must be in [1, 8192] (got 0)"; a value is never the next
                  option (see CLI_DASHES), --flag=value is understood, and
                  --version is known */
} cli_words;

typedef struct cli_spec {
    const char *prog;    /* starts every message: "gradflow" */
    const char *help;    /* printed by --help (NULL: the caller prints) */
    const cli_flag *flags;
    int nflags;
    cli_words words;
    /* printed instead of "unknown option" for an unknown argument, as is:
     * a usage line (NULL: "unknown option '...' (see --help)") */
    const char *usage_line;
    const cli_set_fn *set; /* the CLI_SET flags' functions */
} cli_spec;

#define CLI_COUNT(a) (int)(sizeof(a) / sizeof *(a))
/* A bound this far out is "no limit" in range texts ("an integer >= 1"). */
#define CLI_BIG 1e12

/* Parses argv[0..argc-1] (the program's name left out) into cfg, which
 * holds the defaults; given[i] (NULL: not wanted) tells whether flags[i]
 * was on the line. 0; 1 for --help or -h, 2 for --version (CLI_MUST:
 * nothing printed); -1 with cli_error() naming the argument. */
int cli_parse(const cli_spec *spec, int argc, char **argv, void *cfg,
              bool *given);
/* cli_parse of argv[1..]: --help prints spec->help to stdout and exits 0;
 * an error prints "PROG: message" to stderr and exits 2. */
void cli_parse_or_exit(const cli_spec *spec, int argc, char **argv,
                       void *cfg);
/* Parses text as the value of flag f into cfg: 0, or -1 with a message
 * starting with context ("--hidden", or charlm's "checkpoint X: metadata
 * 'hidden'"). */
int cli_value(const cli_spec *spec, const cli_flag *f, void *cfg,
              const char *text, const char *context);
/* The value of f in cfg as text (charlm's checkpoints store it). */
void cli_format(const cli_flag *f, const void *cfg, char *buf, size_t cap);
/* The shortest "%.Ng" of v that reads back as v (as Python prints
 * floats); "NaN", "Infinity", "-Infinity" otherwise. */
void cli_shortest(char *buf, size_t cap, double v);
/* "  --flag ARG   text..." with the text wrapped at 79 columns. */
void cli_help_line(FILE *f, const char *flag, const char *text);

/* The message of the last cli_fail, and cli_fail itself (-1). */
const char *cli_error(void);
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checked values, for set functions and by hand. Each prints
 * "PROG: FLAG wants ..., got '...'" and exits with status 2 when the value
 * is bad (NULL: missing). An integer in [lo, hi]: */
long cli_int(const char *prog, const char *flag, const char *v, long lo,
             long hi);
/* A finite number >= lo. */
double cli_real(const char *prog, const char *flag, const char *v, double lo);
/* Up to max integers in [2, 100000] separated by commas. */
void cli_lengths(const char *prog, const char *flag, const char *v,
                 int *lengths, int *n, int max);
/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
