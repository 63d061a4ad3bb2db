/*
 * tests/test_inspect.c - the tape listing, the Graphviz export and the
 * explorer's page (its data: the JSON inside, compared with the tape).
 */
#include "harness.h"
#include "autograd/explore.h"
#include "ops/ops.h"

#include <cJSON.h>
#include <math.h>

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


/* ---- the explorer's page: tg_tape_html -------------------------------- */

/* the page for root, and the JSON object inside it (parsed) */
static cJSON *page_data(const tg_tensor *root, const tg_html_opts *o,
                        char **page)
{
    size_t len = 0;
    FILE *f = open_memstream(page, &len);
    ck_assert_int_eq(tg_tape_html(f, root, o), 0);
    fclose(f);
    const char *open = "<script id=\"tape\" type=\"application/json\">";
    char *a = strstr(*page, open);
    ck_assert_ptr_nonnull(a);
    a += strlen(open);
    char *b = strstr(a, "</script>");
    ck_assert_ptr_nonnull(b);
    cJSON *d = cJSON_ParseWithLength(a, (size_t)(b - a));
    ck_assert_msg(d, "the page's JSON does not parse near: %.80s",
                  cJSON_GetErrorPtr());
    return d;
}

/* the numbers of a vsum written in full ({"n":.., "v":[..]}) equal p */
static void nums_equal(const cJSON *v, const tg_real *p, int64_t n)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(v, "n")->valuedouble, n);
    const cJSON *a = cJSON_GetObjectItem(v, "v");
    ck_assert_int_eq(cJSON_GetArraySize(a), (int)n);
    for (int i = 0; i < n; i++) /* 9 digits: the same float */
        ck_assert_msg((tg_real)cJSON_GetArrayItem(a, i)->valuedouble == p[i],
                      "number %d: %.9g on the page, %.9g on the tape", i,
                      cJSON_GetArrayItem(a, i)->valuedouble, (double)p[i]);
}

static const cJSON *item(const cJSON *o, const char *key, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(o, key), i);
}

START_TEST(html_page)
{
    /* loss = sum(a * a + exp(b)): a feeds mul twice, its gradient 2a */
    tg_tensor *a = tg_set_name(tg_requires_grad(tg_full(TG_SHAPE(2), 3)),
                               "a</script>\"");
    tg_tensor *b = tg_set_name(tg_requires_grad(tg_full(TG_SHAPE(2), 0.5)),
                               "b");
    tg_tensor *aa = tg_retain_grad(tg_mul(a, a));
    tg_tensor *eb = tg_retain_grad(tg_exp(b));
    tg_tensor *loss = tg_set_name(tg_sum(tg_add(aa, eb)), "loss");
    tg_set_tangent(b, tg_full(TG_SHAPE(2), 1)); /* forward mode along b */
    ck_assert_int_eq(tg_jvp(), 0);
    tg_sweep_rec *rec = tg_sweep_record_begin();
    ck_assert_int_eq(tg_backward(loss), 0);
    tg_sweep_record_end(rec);
    char *page;
    cJSON *d = page_data(loss, &(tg_html_opts){.title = "t", .sweep = rec},
                         &page);
    /* self-contained: no address to fetch anything from */
    ck_assert_ptr_null(strstr(page, "://"));
    ck_assert_ptr_null(strstr(page, "src="));
    ck_assert_ptr_null(strstr(page, "<link"));
    /* entries: those of tg_tape_print, in tape order */
    const cJSON *E = cJSON_GetObjectItem(d, "entries");
    ck_assert_int_eq(cJSON_GetArraySize(E), (int)tg_tape_size());
    static const char *const ops[] = {"mul", "exp", "add", "sum"};
    for (int i = 0; i < 4; i++) {
        const cJSON *e = cJSON_GetArrayItem(E, i);
        ck_assert_str_eq(cJSON_GetObjectItem(e, "op")->valuestring, ops[i]);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "i")->valueint, i);
    }
    /* tensors: values and tangents as on the tape; a's name escaped */
    const cJSON *T = cJSON_GetObjectItem(d, "tensors");
    const cJSON *ta = cJSON_GetArrayItem(T, 0); /* entry 0's first input */
    ck_assert_str_eq(cJSON_GetObjectItem(ta, "ref")->valuestring, a->name);
    ck_assert_str_eq(cJSON_GetObjectItem(ta, "kind")->valuestring, "leaf");
    ck_assert_ptr_null(strstr(page, "a</script>"));
    for (int t = 0; t < cJSON_GetArraySize(T); t++) {
        const cJSON *x = cJSON_GetArrayItem(T, t);
        const tg_tensor *y = NULL;
        const char *ref = cJSON_GetObjectItem(x, "ref")->valuestring;
        y = !strcmp(ref, "b") ? b : !strcmp(ref, "#0") ? aa
            : !strcmp(ref, "#1") ? eb : NULL;
        if (!y)
            continue;
        nums_equal(cJSON_GetObjectItem(x, "value"), y->data, 2);
        if (y != aa)
            nums_equal(cJSON_GetObjectItem(x, "tangent"), y->tangent, 2);
        else
            ck_assert(cJSON_IsNull(cJSON_GetObjectItem(x, "tangent")));
    }
    /* the sweep: last entry first; what arrived at mul and exp is the
     * retained gradient; mul's one share into a is both its inputs' (the
     * same tensor): 2a, which is a's whole gradient */
    const cJSON *S = cJSON_GetObjectItem(d, "sweep");
    ck_assert_int_eq(cJSON_GetArraySize(S), 4);
    for (int j = 0; j < 4; j++)
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(S, j), "i")
                             ->valueint, 3 - j);
    const cJSON *smul = cJSON_GetArrayItem(S, 3);
    const cJSON *sexp = cJSON_GetArrayItem(S, 2);
    nums_equal(item(smul, "grad", 0), aa->grad, 2);
    nums_equal(item(sexp, "grad", 0), eb->grad, 2);
    nums_equal(item(smul, "share", 0), a->grad, 2);
    ck_assert_str_eq(item(smul, "total", 0)->valuestring, "share");
    nums_equal(item(sexp, "share", 0), b->grad, 2);
    tgt_close(a->grad[0], 6, 0);
    tgt_close(b->grad[1], exp(0.5), 1e-6);
    cJSON_Delete(d);
    free(page);
    tg_sweep_record_free(rec);

    /* a recording belongs to its tape */
    rec = tg_sweep_record_begin();
    tg_backward(tg_sum(tg_mul(a, b)));
    tg_sweep_record_end(rec);
    tg_tape_reset();
    tgt_capture_errors();
    FILE *f = fopen("/dev/null", "w");
    ck_assert_int_eq(tg_tape_html(f, NULL, &(tg_html_opts){.sweep = rec}), -1);
    tgt_expect_error("tg_tape_reset");
    fclose(f);
    tg_sweep_record_free(rec);
}
END_TEST

START_TEST(html_large_and_strips)
{
    /* h_t = tanh(h_{t-1} W), 3 steps, H = 40: h_t is a summary and a heat
     * map; the time axis holds ||dL/dh_t|| as the sweep found it */
    enum { H = 40 };
    tg_tensor *W = tg_requires_grad(tg_full(TG_SHAPE(H, H), 0.02));
    tg_tensor *h[4];
    h[0] = tg_full(TG_SHAPE(1, H), 1);
    for (int t = 1; t <= 3; t++) {
        tg_tape_set_step(t);
        h[t] = tg_retain_grad(tg_tanh(tg_matmul(h[t - 1], W)));
    }
    tg_tape_set_step(-1);
    tg_tensor *loss = tg_sum(h[3]);
    tg_sweep_rec *rec = tg_sweep_record_begin();
    tg_backward(loss);
    tg_sweep_record_end(rec);
    tg_html_strip strip = {"h_t", h + 1, 3};
    char *page;
    cJSON *d = page_data(loss, &(tg_html_opts){.sweep = rec, .strips = &strip,
                                               .nstrips = 1}, &page);
    const cJSON *cells = cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(d, "strips"), 0), "cells");
    ck_assert_int_eq(cJSON_GetArraySize(cells), 3);
    for (int t = 1; t <= 3; t++) {
        double sq = 0;
        for (int i = 0; i < H; i++)
            sq += (double)h[t]->grad[i] * (double)h[t]->grad[i];
        const cJSON *c = cJSON_GetArrayItem(cells, t - 1);
        tgt_close(cJSON_GetObjectItem(c, "norm")->valuedouble,
                            sqrt(sq), 1e-6);
        ck_assert_int_eq(cJSON_GetObjectItem(c, "t")->valueint, t);
    }
    /* the gradient that arrived at tanh of step 3 (entry #5), summarised */
    const cJSON *S = cJSON_GetObjectItem(d, "sweep");
    const cJSON *g = item(cJSON_GetArrayItem(S, 1), "grad", 0);
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(S, 1), "i")->valueint, 5);
    ck_assert_ptr_null(cJSON_GetObjectItem(g, "v"));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(g, "heat")),
                     cJSON_GetObjectItem(g, "rows")->valueint *
                         cJSON_GetObjectItem(g, "cols")->valueint);
    ck_assert_int_le(cJSON_GetArraySize(cJSON_GetObjectItem(g, "heat")),
                     TG_HTML_CELLS);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int i = 0; i < H; i++) {
        double v = (double)h[3]->grad[i];
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
    }
    tgt_close(cJSON_GetObjectItem(g, "min")->valuedouble, lo, 1e-6);
    tgt_close(cJSON_GetObjectItem(g, "max")->valuedouble, hi, 1e-6);
    tgt_close(cJSON_GetObjectItem(g, "mean")->valuedouble, sum / H,
                        1e-6);
    /* W's gradient after the last share (matmul of step 1, the last entry
     * of the sweep): the whole of W->grad, summarised */
    const cJSON *last = cJSON_GetArrayItem(S, cJSON_GetArraySize(S) - 1);
    double wsum = 0;
    for (int i = 0; i < H * H; i++)
        wsum += (double)W->grad[i];
    tgt_close(cJSON_GetObjectItem(item(last, "total", 1), "mean")
                            ->valuedouble, wsum / (H * H), 1e-6);
    cJSON_Delete(d);
    free(page);
    tg_sweep_record_free(rec);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_add_checked_fixture(tc, NULL, tgt_teardown);
    tcase_add_test(tc, listing);
    tcase_add_test(tc, dot_graph);
    tcase_add_test(tc, html_page);
    tcase_add_test(tc, html_large_and_strips);
    suite_add_tcase(s, tc);
    return s;
}

TG_TEST_MAIN(suite)
