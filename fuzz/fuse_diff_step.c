/*
 * fuzz/fuse_diff_step.c - the byte reader, the known-bug switches, and a
 * generated program (fuzz/fuse_diff.h) as a cell: the step function that
 * runs its instructions with the ops, the init that makes its extra
 * parameters, and the program printed as C.
 */
#include "fuzz/fuse_diff.h"
#include "fuzz/fuse_diff_ops.h"

#include <stdlib.h>
#include <string.h>

#define MAXCHUNKS 16

unsigned fd_bugs;
const fd_prog *fd_cur;
tg_cell_type fd_type;

/* ---- the byte reader ---------------------------------------------------- */
unsigned fd_byte(fd_bytes *b) { return b->at < b->n ? b->p[b->at++] : 0; }
int fd_pick(fd_bytes *b, int n)
{
    return n <= 1 ? 0 : (int)(fd_byte(b) % (unsigned)n);
}
int fd_range(fd_bytes *b, int lo, int hi)
{
    return lo + fd_pick(b, hi - lo + 1);
}
/* 0 (an exhausted input) is always "no" */
bool fd_chance(fd_bytes *b, int percent)
{
    return (int)(fd_byte(b) * 100u / 256u) >= 100 - percent;
}

int fd_bugs_from_env(void)
{
    const char *s = getenv("FUSE_DIFF_BUGS");
    fd_bugs = FD_FIXED; /* their scenarios always run */
    if (!s || !*s || !strcmp(s, "none"))
        return 0;
    if (!strcmp(s, "all")) {
        fd_bugs = (1u << FD_NBUGS) - 1;
        return 0;
    }
    for (; *s; s++) {
        if (*s == ',')
            continue;
        if (*s < 'a' || *s >= 'a' + FD_NBUGS) {
            fprintf(stderr, "FUSE_DIFF_BUGS: '%c' is not a known bug: give "
                    "letters a..%c separated by commas, all or none\n", *s,
                    'a' + FD_NBUGS - 1);
            return -1;
        }
        fd_bugs |= 1u << (*s - 'a');
    }
    return 0;
}

/* ---- the step ----------------------------------------------------------- */
static tg_tensor *run_ins(tg_cell *c, const fd_prog *p, const fd_ins *in,
                          const fd_val *o, tg_tensor *const *v, int64_t B)
{
    tg_tensor *A = in->a >= 0 ? v[in->a] : NULL;
    tg_tensor *Bv = in->b >= 0 ? v[in->b] : NULL;
    tg_tensor *C = in->c >= 0 ? v[in->c] : NULL;
    if ((in->a >= 0 && !A) || (in->b >= 0 && !Bv) || (in->c >= 0 && !C))
        return NULL; /* an op before failed, and said so */
    int64_t shape[3];
    for (int k = 0; k < o->nd; k++)
        shape[k] = o->d[k] != FD_B ? o->d[k] : in->op == OP_RESHAPE ? -1 : B;
    const fd_user *u = c->user;
    tg_tensor *part[MAXCHUNKS];
    const int *i = in->i;
    switch (in->op) {
    case OP_PARAM:
        return i[0] == -1 ? c->weight_hh : i[0] == -2
                   ? c->bias_hh
                   : tg_cell_param(c, p->params[i[0]].name);
    case OP_FULL: return tg_full(o->nd, shape, in->k);
    case OP_ARANGE: return tg_arange(0, i[0], 1);
    case OP_USCALE: TG_ASSERT(u); return tg_mul_scalar(A, u->scale);
    case OP_UMASK: TG_ASSERT(u); return tg_mul(A, u->mask);
    case OP_TANH: return tg_tanh(A);
    case OP_SIGMOID: return tg_sigmoid(A);
    case OP_RELU: return tg_relu(A);
    case OP_NEG: return tg_neg(A);
    case OP_STEP: return tg_step_ste(A);
    case OP_EXP: return tg_exp(A);
    case OP_LOG: return tg_log(A);
    case OP_SQRT: return tg_sqrt(A);
    case OP_SOFTPLUS: return tg_softplus(A);
    case OP_ADDK: return tg_add_scalar(A, in->k);
    case OP_MULK: return tg_mul_scalar(A, in->k);
    case OP_POWK: return tg_pow_scalar(A, in->k);
    case OP_ADD: return tg_add(A, Bv);
    case OP_SUB: return tg_sub(A, Bv);
    case OP_MUL: return tg_mul(A, Bv);
    case OP_DIV: return tg_div(A, Bv);
    case OP_POW: return tg_pow(A, Bv);
    case OP_TRANSPOSE: return tg_transpose(A, i[0], i[1]);
    case OP_SLICE: return tg_slice(A, i[0], i[1], i[2], i[3]);
    case OP_CHUNK: return tg_chunk(A, i[1], i[0], part) < 0 ? NULL : part[i[2]];
    case OP_SPLIT:
        return tg_split(A, (int64_t[]){i[1], i[3]}, 2, i[0], part) < 0
                   ? NULL
                   : part[i[2]];
    case OP_SELECT: return tg_select(A, i[0], i[1]);
    case OP_UNSQUEEZE: return tg_unsqueeze(A, i[0]);
    case OP_SQUEEZE: return tg_squeeze(A, i[0]);
    case OP_RESHAPE: return tg_reshape(A, o->nd, shape);
    case OP_EXPAND: return tg_expand(A, o->nd, shape);
    case OP_PERMUTE: return tg_permute(A, i);
    case OP_CONTIG: return tg_contiguous(A);
    case OP_CONCAT: return tg_concat((tg_tensor *[]){A, Bv}, 2, i[0]);
    case OP_STACK: return tg_stack((tg_tensor *[]){A, Bv, C}, i[1], i[0]);
    case OP_CAT0CHUNK: {
        tg_tensor *cat = tg_concat((tg_tensor *[]){A, Bv}, 2, 0);
        return cat && tg_chunk(cat, 2, 0, part) == 2 ? part[i[0]] : NULL;
    }
    case OP_SUMDIM: return tg_sum_dim(A, i[0], i[1]);
    case OP_MEANDIM: return tg_mean_dim(A, i[0], i[1]);
    case OP_MAXDIM: return tg_max_dim(A, i[0], i[1]);
    case OP_SUM: return tg_sum(A);
    case OP_MEAN: return tg_mean(A);
    case OP_LINEAR: return tg_linear(A, Bv, C);
    case OP_MATMUL: return tg_matmul(A, Bv);
    case OP_DROPOUT: return tg_dropout(A, 0.25, true, NULL);
    }
    TG_ASSERT(!"fuse_diff: unknown instruction");
    return NULL;
}

static void fd_step(tg_cell *c, tg_tensor *xp, tg_tensor *const *s,
                    tg_tensor **next)
{
    const fd_prog *p = fd_cur;
    tg_tensor *v[FD_MAXV];
    int64_t B = xp ? xp->shape[0] : 0; /* (NULL: an error was reported) */
    v[0] = xp;
    for (int k = 0; k < p->nstate; k++)
        v[1 + k] = s[k];
    for (int j = 0; j < p->nins; j++) {
        int at = p->nstate + 1 + j;
        v[at] = run_ins(c, p, &p->ins[j], &p->v[at], v, B);
    }
    for (int k = 0; k < p->nstate; k++)
        next[k] = v[p->out[k]];
}

static int fd_init(tg_cell *c, tg_rng *rng)
{
    const fd_prog *p = fd_cur;
    for (int j = 0; j < p->nparams; j++) {
        const fd_param *q = &p->params[j];
        int64_t shape[2] = {q->d[0], q->d[1]};
        if (!tg_cell_param_new(c, q->name, q->nd, shape, rng))
            return -1;
    }
    return 0;
}

void fd_type_set(const fd_prog *p)
{
    fd_cur = p;
    memset(&fd_type, 0, sizeof fd_type);
    fd_type.name = "fuzzed";
    fd_type.nstate = p->nstate;
    fd_type.gates = p->gates;
    fd_type.init = fd_init;
    fd_type.step = fd_step;
#ifdef FUSE_DIFF_USER_SIZE
    if ((p->features & FD_F_CAPTURED) && !(p->features & FD_F_UNDECLARED))
        fd_type.user_size = sizeof(fd_user);
#endif
}

/* ---- the program as C --------------------------------------------------- */
static void print_dims(FILE *f, const fd_val *v)
{
    fprintf(f, "[");
    for (int k = 0; k < v->nd; k++) {
        if (v->d[k] == FD_B)
            fprintf(f, "%sB", k ? ", " : "");
        else
            fprintf(f, "%s%d", k ? ", " : "", v->d[k]);
    }
    fprintf(f, "]");
}

static const char *const op_text[] = {
#define FD_OP_TEXT(name, c) c,
    FD_OPS(FD_OP_TEXT)
#undef FD_OP_TEXT
};

void fd_print(const fd_prog *p, FILE *f)
{
    fprintf(f, "/* cell: nstate %d, gates %d, input %d, hidden %d, layers %d, "
            "dropout %g; extra parameters:", p->nstate, p->gates, p->I, p->H,
            p->L, p->dropout);
    for (int j = 0; j < p->nparams; j++) {
        fprintf(f, " %s ", p->params[j].name);
        fd_val q;
        memset(&q, 0, sizeof q);
        q.nd = p->params[j].nd;
        memcpy(q.d, p->params[j].d, sizeof p->params[j].d);
        print_dims(f, &q);
    }
    fprintf(f, "%s */\n", p->nparams ? "" : " none");
    fprintf(f, "int64_t B = xp->shape[0];\ntg_tensor *o[%d];\n", MAXCHUNKS);
    for (int k = 0; k <= p->nstate; k++) {
        if (k == 0)
            fprintf(f, "tg_tensor *v0 = xp; /* ");
        else
            fprintf(f, "tg_tensor *v%d = s[%d]; /* ", k, k - 1);
        print_dims(f, &p->v[k]);
        fprintf(f, " */\n");
    }
    for (int j = 0; j < p->nins; j++) {
        const fd_ins *in = &p->ins[j];
        const fd_val *o = &p->v[p->nstate + 1 + j];
        for (const char *t = op_text[in->op]; *t; t++) {
            if (*t != '$') {
                fputc(*t, f);
                continue;
            }
            char c = *++t;
            switch (c) {
            case 'V': fprintf(f, "tg_tensor *v%d", p->nstate + 1 + j); break;
            case 'A': fprintf(f, "v%d", in->a); break;
            case 'B': fprintf(f, "v%d", in->b); break;
            case 'C':
                if (in->c < 0)
                    fprintf(f, "NULL");
                else
                    fprintf(f, "v%d", in->c);
                break;
            case 'K': fprintf(f, "%.17g", in->k); break;
            case 'S':
                if (o->nd == 0) {
                    fprintf(f, "0, NULL");
                    break;
                }
                fprintf(f, "TG_SHAPE(");
                for (int k = 0; k < o->nd; k++) {
                    if (o->d[k] != FD_B)
                        fprintf(f, "%s%d", k ? ", " : "", o->d[k]);
                    else
                        fprintf(f, "%s%s", k ? ", " : "",
                                in->op == OP_RESHAPE ? "-1" : "B");
                }
                fprintf(f, ")");
                break;
            case 'P':
                if (in->i[0] == -1)
                    fprintf(f, "c->weight_hh");
                else if (in->i[0] == -2)
                    fprintf(f, "c->bias_hh");
                else
                    fprintf(f, "tg_cell_param(c, \"%s\")",
                            p->params[in->i[0]].name);
                break;
            default: fprintf(f, "%d", in->i[c - '0']); break;
            }
        }
        fprintf(f, " /* ");
        print_dims(f, o);
        fprintf(f, " in [%.3g, %.3g]%s */\n", o->lo, o->hi,
                o->contig ? "" : ", strided");
    }
    for (int k = 0; k < p->nstate; k++)
        fprintf(f, "next[%d] = v%d;\n", k, p->out[k]);
}
