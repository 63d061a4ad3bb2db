/*
 * ops/fuse/fuse_internal.h - what the four files of the step compiler share
 * (not a public header; the API is ops/fuse.h):
 *   ops/fuse/fuse.c        the switch, tracing, running a program, printing
 *   ops/fuse/fuse_plan.c   a traced step -> values, nodes, groups, replays
 *   ops/fuse/fuse_group.c  one group -> vector machine instructions
 *   ops/fuse/fuse_vm.c     the vector machine: a group forward and backward
 */
#ifndef TG_OPS_FUSE_INTERNAL_H
#define TG_OPS_FUSE_INTERNAL_H

#include "ops/fuse.h"
#include "ops/fuse/fuse_stats.h"
#include "ops/internal.h"

/* numbers per register: a block of 256 floats is 1 KB, so the registers of
 * a whole LSTM step (about 20) stay in L1 while they are used */
#define BLK 256

/* ==== 2. a group ======================================================
 * A group computes its outputs, all of one shape S, element by element
 * from its external inputs. Its iteration space is S, walked in tiles: a
 * tile is up to BLK consecutive numbers of S's last axis in one "row"
 * (one index of the leading axes). Every external input is read through
 * an affine map from S: at offset off + sum_j i_j * st[j] of its numbers
 * (and, for its gradient, goff + sum_j i_j * gst[j] of its contiguous
 * gradient buffer). A chunk of a [B, 4H] tensor is such a map; so is a
 * bias broadcast over the batch (stride 0). */

typedef struct vm_load {
    int ext;                           /* which external input            */
    int64_t off, st[TG_MAX_DIMS];      /* its numbers                     */
    int64_t goff, gst[TG_MAX_DIMS];    /* its gradient buffer             */
    bool scratch;  /* gradient through a full-size buffer, summed after:
                      the map is not one-to-one (a broadcast), or another
                      load of the same input might touch the same number */
    int reg;
    int64_t lo[TG_MAX_DIMS], hi[TG_MAX_DIMS]; /* index range per axis of
                                                 the input              */
    int keep;      /* instruction whose output is stored over this load's
                      numbers for backward (see plan_backward), or -1   */
    bool needed;   /* backward reads this load's own numbers            */
} vm_load;

typedef struct vm_ins {
    unsigned char code;
    int dst, src[3];
    tg_real k;
    const tg_ew_rule *rule; /* the member op's rule, for backward */
    int kept;               /* its output is kept by this load, or -1 */
    bool recompute;         /* backward recomputes it (see plan_backward) */
} vm_ins;

/* An output read by members of its own group at a map other than its
 * own (a transpose of it, a broadcast): that read's gradient stays in
 * register reg. Only a retained gradient of the output needs it (see
 * fused_bwd): added through goff, gst into the output's gradient. */
typedef struct vm_tap {
    int out, reg;
    int64_t goff, gst[TG_MAX_DIMS];
} vm_tap;

typedef struct group {
    int ndim;                  /* of S (at least 1: a scalar is [1])      */
    int64_t shape[TG_MAX_DIMS];
    int out_ndim;              /* of the outputs: ndim, or 0 for scalars
                                  (made 0-d, as the member ops make them) */
    int64_t numel, inner, nchunk, ntiles;
    int nreg;
    vm_load *loads;            /* stb_ds arrays */
    vm_ins *ins;
    int *out_reg;              /* register of each output                */
    bool *out_direct;          /* that register is computed into the
                                  output's numbers (not copied there)    */
    int *ext_val, *out_val;    /* program values (part 3)                */
    int *members;              /* member nodes, in trace order           */
    vm_tap *taps;              /* stb_ds array                           */
    char *label;               /* "fused[add sigmoid ...]"               */
    const char **member_op;    /* the members' op names (static strings),
                                  stb_ds array                            */
    int n_ext;                 /* number of external inputs              */
} group;


/* ==== 3. compiling =====================================================
 * Values are the tensors of the trace: step inputs, leaves (parameters by
 * pointer, constants made in the step copied into the program) and node
 * outputs. Nodes are the traced entries, with their arguments, kept for
 * replay and for their elementwise rules. */

enum { PV_INPUT, PV_LEAF, PV_NODE };

typedef struct pval {
    int kind, index;     /* input slot or node                             */
    tg_tensor *leaf;     /* PV_LEAF                                        */
    bool own_leaf;       /* the program's copy of a constant               */
    tg_tensor layout;    /* shape and strides seen in the trace            */
    bool invariant;      /* does not depend on the step's inputs           */
    int group;           /* member of this group, or -1                    */
    bool is_output;      /* needed outside its group                       */
    bool accessor;       /* a view only groups read: never made, followed  */
} pval;

typedef struct pnode {
    tg_entry e;          /* op and arguments; in/out: traced headers       */
    int *in;             /* values (stb_ds)                                */
    int out;
    int acc;             /* replay_into this value's numbers, or -1        */
    bool dead;           /* rewritten away                                 */
} pnode;

enum { I_REPLAY, I_GROUP };
typedef struct pins {
    int kind, index; /* node or group */
} pins;

/* A tensor captured from outside the step (fuse.h, "Guards"): read
 * through its address while its id says it is still the same tensor;
 * version: tg_version when the sequence began. */
typedef struct pcapture {
    tg_tensor *t;
    uint32_t id, version;
} pcapture;

/* vals[k] for k < nin are the step's inputs, in order (made first) */
struct tg_prog {
    bool ok;
    char why[512];
    int refs;            /* the owner's, and the tape's while held         */
    bool held;           /* the tape holds a reference (tg_tape_hold)      */
    /* guards */
    const void *block_at; /* the state block: address, size, bytes when   */
    size_t block_size;    /* traced (block_at NULL: none)                 */
    unsigned char *block;
    uint32_t since;      /* tg_next_id() when tracing began               */
    tg_tensor *in_layout; /* nin: the inputs' layouts as traced          */
    pcapture *caps;      /* stb_ds array                                   */
    char log[1024];      /* guard failures that led here (tg_prog_why)     */
    char failed[320];    /* tg_prog_check's last answer                    */
    int nin, nout;
    unsigned donate;     /* inputs whose numbers the program may overwrite */
    pval *vals;          /* stb_ds arrays */
    pnode *nodes;
    group **groups;
    pins *pre, *body;    /* preamble (once per sequence) and step          */
    int *out_val;        /* value of each step output                      */
    tg_tensor **env;     /* current tensor of each value                   */
};

/* ops/fuse/fuse_vm.c: runs group g on its external inputs, making its outputs
 * (arena) and recording one entry when any input requires grad */
void tg_fuse_group_run(const group *g, tg_tensor *const *ext, tg_tensor **outs);
void tg_fuse_group_free(group *g);
/* ops/fuse/fuse_group.c: instructions for group gid; false if its outputs
 * differ in shape or a view cannot be followed (it then runs split) */
bool tg_fuse_codegen(tg_prog *p, int gid);
/* true if view node n can be read through (an accessor): its map holds
 * for every index of its output */
bool tg_fuse_view_follows(const tg_prog *p, const pnode *n);
/* ops/fuse/fuse_plan.c: the program from the traced entries first.. */
bool tg_fuse_build(tg_prog *p, int64_t first, tg_tensor *const *in,
                   tg_tensor **out);
/* ops/fuse/fuse_plan.c: marks p as not compiled, why (the first reason wins) */
void tg_fuse_fail(tg_prog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ops/fuse/fuse.c: same shapes, and same strides where a size exceeds 1 */
bool tg_fuse_same_layout(const tg_tensor *a, const tg_tensor *b);

#endif
