/*
 * tests/test_vm_rules.c - every elementwise op against its own rule.
 *
 * An elementwise op says what it computes as codes of the vector machine
 * (its tg_ew_rule; each code is one line of ops/kernels/vm_codes.h), and
 * every path runs those codes: the ops' own forward and backward (through
 * the strided, broadcasting driver tg_ew_run_code), the fused programs
 * and forward mode. Here each op's forward and backward, on random
 * numbers, must equal its rule evaluated code by code on plain arrays -
 * bit for bit: the rule's sources, constant and order, read back from
 * the tape entry the op recorded. And each code of those rules, run by
 * tg_ew_run_code over random shapes and strided views, must equal a plain
 * loop over the indices.
 */
#include "harness.h"
#include "ops/fuse/fuse_stats.h"
#include "ops/internal.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 37 }; /* not a multiple of any vector width */

typedef struct op_case {
    const char *name;
    tg_tensor *(*f1)(tg_tensor *);
    tg_tensor *(*f2)(tg_tensor *, tg_tensor *);
    tg_tensor *(*fk)(tg_tensor *, double);
    double k;
    double lo, hi; /* the inputs' range */
} op_case;

static const op_case cases[] = {
    {"add", .f2 = tg_add, .lo = -3, .hi = 3},
    {"sub", .f2 = tg_sub, .lo = -3, .hi = 3},
    {"mul", .f2 = tg_mul, .lo = -3, .hi = 3},
    {"div", .f2 = tg_div, .lo = 0.5, .hi = 3},
    {"pow", .f2 = tg_pow, .lo = 0.5, .hi = 2},
    {"neg", .f1 = tg_neg, .lo = -3, .hi = 3},
    {"add_scalar", .fk = tg_add_scalar, .k = 0.75, .lo = -3, .hi = 3},
    {"mul_scalar", .fk = tg_mul_scalar, .k = -1.5, .lo = -3, .hi = 3},
    {"pow_scalar", .fk = tg_pow_scalar, .k = 2.5, .lo = 0.5, .hi = 2},
    {"exp", .f1 = tg_exp, .lo = -3, .hi = 3},
    {"log", .f1 = tg_log, .lo = 0.1, .hi = 3},
    {"tanh", .f1 = tg_tanh, .lo = -4, .hi = 4},
    {"sigmoid", .f1 = tg_sigmoid, .lo = -6, .hi = 6},
    {"relu", .f1 = tg_relu, .lo = -3, .hi = 3},
    {"sqrt", .f1 = tg_sqrt, .lo = 0.1, .hi = 3},
    {"softplus", .f1 = tg_softplus, .lo = -30, .hi = 30},
    {"step_ste", .f1 = tg_step_ste, .lo = -3, .hi = 3},
};

static tg_tensor *leaf(uint64_t seed, double lo, double hi)
{
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tensor *t = tg_requires_grad(tg_empty(TG_SHAPE(N)));
    for (int i = 0; i < N; i++)
        t->data[i] = (tg_real)(lo + (hi - lo) * tg_rng_uniform(&rng));
    return t;
}

static void same_bits(const char *what, const char *op, const tg_real *got,
                      const tg_real *want)
{
    for (int i = 0; i < N; i++)
        ck_assert_msg(!memcmp(&got[i], &want[i], sizeof got[i]),
                      "%s: %s [%d] is %.17g by the op, %.17g by its rule",
                      op, what, i, (double)got[i], (double)want[i]);
}

START_TEST(each_op_is_its_rule)
{
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const op_case *oc = &cases[c];
        tg_tensor *a = leaf(2 * c + 1, oc->lo, oc->hi);
        tg_tensor *b = oc->f2 ? leaf(2 * c + 2, oc->lo, oc->hi) : NULL;
        tg_tensor *y = oc->f1   ? oc->f1(a)
                       : oc->f2 ? oc->f2(a, b)
                                : oc->fk(a, oc->k);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_ge(y->entry, 0);
        const tg_entry *e = tg_tape_entry(y->entry);
        const tg_ew_rule *r = e->op->ew;
        ck_assert_msg(r, "%s has no rule", oc->name);
        ck_assert_int_eq(r->nin, b ? 2 : 1);
        tg_real k = (tg_real)e->farg[TG_EW_K];
        /* forward: y = code(a, b; k) */
        tg_real want[N];
        tg_vm_eval(r->code, N, want, a->data, b ? b->data : a->data, NULL,
                   k, false);
        same_bits("y", oc->name, y->data, want);
        /* backward: da += dcode(sources), from a gradient g */
        tg_tensor *g = leaf(100 + c, -2, 2);
        ck_assert_int_eq(tg_backward_seed(y, g), 0);
        const tg_real *src[4] = {[TG_R_G] = g->data, [TG_R_A] = a->data,
                                 [TG_R_B] = b ? b->data : NULL,
                                 [TG_R_Y] = y->data};
        tg_tensor *in[2] = {a, b};
        for (int i = 0; i < r->nin; i++) {
            const tg_ew_deriv *d = &r->d[i];
            tg_real dx[N] = {0};
            tg_vm_eval(d->code, N, dx, src[d->src[0]], src[d->src[1]],
                       src[d->src[2]], k, true);
            same_bits(i ? "db" : "da", oc->name, in[i]->grad, dx);
        }
        tg_tape_reset();
    }
}
END_TEST

/* ---- the strided driver against a loop over indices -------------------
 * tg_ew_run_code, the driver every elementwise op runs its codes through,
 * walks any shape and strides: it merges dimensions that every operand
 * walks as one, cuts rows into tiles of 8192, and gathers the numbers of
 * strided operands (and scatters those of a strided operand 0) 256 at a
 * time. each_op_is_its_rule gives it contiguous operands only, which go
 * to the machine as they are. Here each code of each rule is run as the
 * ops run it - the forward code with acc false (tg_ew_unary,
 * tg_ew_binary), each derivative code with acc true (tg_ew_backward) -
 * over random shapes and views, and must give, bit for bit, what a plain
 * loop over every index i gives evaluating the code on one number at a
 * time at offset + i . stride of each operand.
 *
 * The loop is an independent reference: it shares with the driver only
 * the arithmetic of one number (tg_vm_eval with n = 1: the code's line of
 * vm_codes.h), none of the merging, tiles, gather buffers or scatter that
 * are under test; and that arithmetic gives the same bits whatever the n
 * (elementwise, no reordered sums; tests/kernel_levels.c compares the
 * vectorized levels). It also finds a write outside operand 0's view:
 * the whole of operand 0's buffer is compared. */

typedef struct view {
    int64_t off, st[TG_MAX_DIMS];
    int64_t len; /* numbers in its buffer */
} view;

static int64_t below(tg_rng *r, int64_t n)
{
    return (int64_t)tg_rng_below(r, (uint64_t)n);
}

/* A random view of shape (nd, shape) into a buffer of its own, as the ops
 * meet them: row-major (a quarter of the time), or the dimensions laid
 * out in a random order (a transpose), each a slice with a step of 1 or
 * 2 from a start of 0 or 1 (an offset) out of a slightly larger parent;
 * a source (bcast) also has stride 0 on some dimensions (an expanded
 * size-1 dimension, or one that a broadcast operand lacks). */
static void random_view(tg_rng *r, int nd, const int64_t *shape, bool bcast,
                        view *v)
{
    int perm[TG_MAX_DIMS];
    int64_t step[TG_MAX_DIMS], start[TG_MAX_DIMS], size[TG_MAX_DIMS];
    bool plain = below(r, 4) == 0;
    for (int d = 0; d < nd; d++) {
        perm[d] = d;
        step[d] = plain ? 1 : 1 + below(r, 2);
        start[d] = plain ? 0 : below(r, 2);
        size[d] = start[d] + (shape[d] - 1) * step[d] + 1 +
                  (plain ? 0 : below(r, 2));
    }
    for (int d = nd - 1; d > 0 && !plain; d--) { /* Fisher-Yates */
        int j = (int)below(r, d + 1), t = perm[d];
        perm[d] = perm[j];
        perm[j] = t;
    }
    int64_t s = 1, pst[TG_MAX_DIMS];
    for (int i = nd - 1; i >= 0; i--) { /* the parent, in perm's order */
        pst[perm[i]] = s;
        s *= size[perm[i]];
    }
    v->len = s;
    v->off = 0;
    for (int d = 0; d < nd; d++) {
        v->off += start[d] * pst[d];
        v->st[d] = pst[d] * step[d];
        if (bcast && !plain && below(r, shape[d] == 1 ? 2 : 5) == 0)
            v->st[d] = 0;
    }
}

static void fill(tg_rng *r, tg_real *x, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (tg_real)(lo + (hi - lo) * tg_rng_uniform(r));
}

/* One run of code over a random shape: operand 0 a view with no zero
 * stride, sources j = 1..3 with numbers in [lo[j], hi[j]). Returns the
 * size of the last dimension of more than one (the driver's rows are at
 * least that long). */
static int64_t strided_run(tg_rng *r, int code, double k, bool acc,
                           const double *lo, const double *hi)
{
    int nd = 1 + (int)below(r, 4);
    int64_t shape[TG_MAX_DIMS], total = 1;
    int big = below(r, 5) == 0 ? (int)below(r, nd) : -1;
    if (big >= 0 && below(r, 2) == 0)
        big = nd - 1; /* often innermost: a row longer than one gather */
    bool tile = big >= 0 && below(r, 5) == 0; /* longer than one tile */
    for (int d = 0; d < nd; d++) {
        if (d == big)
            shape[d] = tile ? 8200 : 300;
        else
            shape[d] = tile ? 1 : 1 + below(r, big >= 0 ? 3 : 9);
        total *= shape[d];
    }
    view v[4];
    tg_real *buf[4], *base[4];
    const int64_t *st[4];
    for (int j = 0; j < 4; j++) {
        random_view(r, nd, shape, j > 0, &v[j]);
        buf[j] = malloc((size_t)v[j].len * sizeof(tg_real));
        ck_assert_ptr_nonnull(buf[j]);
        fill(r, buf[j], v[j].len, lo[j], hi[j]);
        base[j] = buf[j] + v[j].off;
        st[j] = v[j].st;
    }
    tg_real *want = malloc((size_t)v[0].len * sizeof(tg_real));
    ck_assert_ptr_nonnull(want);
    memcpy(want, buf[0], (size_t)v[0].len * sizeof(tg_real));
    tg_ew_run_code(code, k, acc, base, st, nd, shape);
    /* the reference: index by index, in row-major order */
    int64_t idx[TG_MAX_DIMS] = {0};
    for (int64_t n = 0; n < total; n++) {
        int64_t o[4];
        for (int j = 0; j < 4; j++) {
            o[j] = v[j].off;
            for (int d = 0; d < nd; d++)
                o[j] += idx[d] * v[j].st[d];
        }
        tg_vm_eval(code, 1, want + o[0], buf[1] + o[1], buf[2] + o[2],
                   buf[3] + o[3], (tg_real)k, acc);
        for (int d = nd - 1; d >= 0 && ++idx[d] == shape[d]; d--)
            idx[d] = 0;
    }
    for (int64_t i = 0; i < v[0].len; i++)
        if (memcmp(&buf[0][i], &want[i], sizeof want[i])) {
            char dims[256];
            size_t len = 0;
            for (int d = 0; d < nd; d++)
                len += (size_t)snprintf(dims + len, sizeof dims - len,
                                        "%s%lld/%lld,%lld,%lld,%lld",
                                        d ? "  " : "", (long long)shape[d],
                                        (long long)v[0].st[d],
                                        (long long)v[1].st[d],
                                        (long long)v[2].st[d],
                                        (long long)v[3].st[d]);
            ck_abort_msg("%s (acc %d) over size/strides of operands 0-3 "
                         "[%s]: operand 0's number %lld (offset %lld) is "
                         "%.17g by tg_ew_run_code, %.17g index by index",
                         tg_vm_code_name(code), (int)acc, dims,
                         (long long)i, (long long)v[0].off,
                         (double)buf[0][i], (double)want[i]);
        }
    for (int j = 0; j < 4; j++)
        free(buf[j]);
    free(want);
    int64_t row = 1;
    for (int d = 0; d < nd; d++)
        row = shape[d] > 1 ? shape[d] : row;
    return row;
}

START_TEST(strided_runs_are_the_loop_over_indices)
{
    enum { LAYOUTS = 8 }; /* random shapes and views per code of a rule */
    tg_rng r;
    tg_rng_seed(&r, 2020);
    int runs = 0, gathers = 0, tiles = 0; /* rows longer than one */
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const op_case *oc = &cases[c];
        /* the rule, from the entry the op records */
        tg_tensor *a = leaf(2 * c + 1, oc->lo, oc->hi);
        tg_tensor *y = oc->f1   ? oc->f1(a)
                       : oc->f2 ? oc->f2(a, a)
                                : oc->fk(a, oc->k);
        ck_assert_ptr_nonnull(y);
        const tg_entry *e = tg_tape_entry(y->entry);
        const tg_ew_rule *rule = e->op->ew;
        double k = e->farg[TG_EW_K];
        tg_tape_reset();
        /* the forward code, then each input's derivative code; the range
         * of each source: g in [-2, 2), a, b and y in the op's range
         * (the derivatives only need finite numbers of a sensible size) */
        for (int job = 0; job <= rule->nin; job++) {
            int code = job ? rule->d[job - 1].code : rule->code;
            double lo[4] = {-1, oc->lo, oc->lo, oc->lo};
            double hi[4] = {1, oc->hi, oc->hi, oc->hi};
            for (int j = 0; job && j < 3; j++)
                if (rule->d[job - 1].src[j] == TG_R_G) {
                    lo[1 + j] = -2;
                    hi[1 + j] = 2;
                }
            for (int l = 0; l < LAYOUTS; l++, runs++) {
                int64_t row = strided_run(&r, code, k, job > 0, lo, hi);
                gathers += row > 256;
                tiles += row > 8192;
            }
        }
    }
    printf("strided runs: %d, with rows longer than a gather %d, than a "
           "tile %d\n", runs, gathers, tiles);
    ck_assert(gathers >= 10 && tiles >= 3);
}
END_TEST

/* every code has a name of its own (listings, coverage reports) */
START_TEST(every_code_is_named)
{
    for (int c = 0; c < TG_VM_NCODES; c++) {
        const char *n = tg_vm_code_name(c);
        ck_assert(n && *n && strcmp(n, "?"));
        for (int o = 0; o < c; o++)
            ck_assert_str_ne(n, tg_vm_code_name(o));
    }
    ck_assert_str_eq(tg_vm_code_name(TG_VM_NCODES), "?");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("vm_rules");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, each_op_is_its_rule);
    tcase_add_test(tc, every_code_is_named);
    tcase_add_test(tc, strided_runs_are_the_loop_over_indices);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
