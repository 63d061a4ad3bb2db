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
 * the tape entry the op recorded.
 */
#include "harness.h"
#include "ops/fuse/fuse_stats.h"
#include "ops/internal.h"
#include "ops/ops.h"

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
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
