/*
 * tests/test_inspect.c - the tape listing and the Graphviz export.
 */
#include "harness.h"
#include "ops/ops.h"

static char *capture_print(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tg_tape_print(f);
    fclose(f);
    return text;
}

START_TEST(listing)
{
    tg_tensor *W = tg_set_name(tg_requires_grad(tg_ones(TG_SHAPE(3, 4))), "W");
    tg_tensor *x = tg_set_name(tg_ones(TG_SHAPE(2, 4)), "x");
    tg_tape_set_step(7);
    tg_tensor *h = tg_tanh(tg_matmul(x, tg_transpose(W, 0, 1)));
    tg_tape_set_step(-1);
    tg_set_name(tg_sum(h), "loss");
    char *t = capture_print();
    ck_assert_msg(strstr(t, "tape: 4 entries\n"), "%s", t);
    ck_assert_msg(strstr(t, "#0    transpose   (W[3, 4]) -> [4, 3]  [t=7]\n"), "%s", t);
    ck_assert_msg(strstr(t, "#1    matmul      (x[2, 4], #0[4, 3]) -> [2, 3]  [t=7]\n"), "%s", t);
    ck_assert_msg(strstr(t, "#2    tanh        (#1[2, 3]) -> [2, 3]  [t=7]\n"), "%s", t);
    ck_assert_msg(strstr(t, "#3    sum         (#2[2, 3]) -> [] loss\n"), "%s", t);
    free(t);
    tg_tape_reset();
    t = capture_print();
    ck_assert_str_eq(t, "tape: 0 entries\n");
    free(t);
}
END_TEST

START_TEST(dot_graph)
{
    tg_tensor *a = tg_set_name(tg_requires_grad(tg_full(TG_SHAPE(2), 3)), "a");
    tg_tensor *b = tg_set_name(tg_requires_grad(tg_full(TG_SHAPE(2), 4)), "b");
    tg_tensor *unrelated = tg_exp(b); /* not on the path to loss */
    tg_tensor *loss = tg_set_name(tg_sum(tg_mul(a, a)), "loss");
    tg_backward(loss);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tg_tape_dot(f, loss);
    fclose(f);
    ck_assert_msg(strncmp(text, "digraph tape {", 14) == 0, "%s", text);
    ck_assert_msg(strstr(text, "label=\"#1 mul\""), "%s", text);
    ck_assert_msg(strstr(text, "label=\"#2 sum\""), "%s", text);
    ck_assert_msg(!strstr(text, "#0 exp"), "unrelated op drawn: %s", text);
    ck_assert_msg(strstr(text, "a[2]\\nvalue: 3 3\\ngrad: 6 6"), "%s", text);
    ck_assert_msg(strstr(text, "loss[]\\nvalue: 18"), "%s", text);
    /* a appears once even though it feeds mul twice; two edges */
    char node[32], edge[48];
    snprintf(node, sizeof node, "\"t%u\" [", (unsigned)a->id);
    snprintf(edge, sizeof edge, "\"t%u\" -> \"e1\"", (unsigned)a->id);
    ck_assert_ptr_nonnull(strstr(text, node));
    ck_assert_ptr_null(strstr(strstr(text, node) + 1, node));
    ck_assert_ptr_nonnull(strstr(text, edge));
    ck_assert_ptr_nonnull(strstr(strstr(text, edge) + 1, edge));
    ck_assert_msg(text[len - 2] == '}', "%s", text);
    free(text);
    /* the whole tape includes the unrelated op */
    f = open_memstream(&text, &len);
    tg_tape_dot(f, NULL);
    fclose(f);
    ck_assert_msg(strstr(text, "#0 exp"), "%s", text);
    free(text);
    (void)unrelated;
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, listing);
    tcase_add_test(tc, dot_graph);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
