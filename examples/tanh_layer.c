/*
 * examples/tanh_layer.c - the smallest complete tapegrad program:
 * y = tanh(W x + b), reduced to a scalar, differentiated, every gradient
 * read back; then the tape is printed and written as a Graphviz graph.
 *
 *   make && build/tanh_layer            (writes build/tanh_layer.dot)
 *   dot -Tsvg build/tanh_layer.dot -o tanh_layer.svg
 */
#include "ops/ops.h"

int main(int argc, char **argv)
{
    tg_manual_seed(1);
    /* parameters: persistent, gradients accumulate on the heap */
    tg_tensor *W = tg_set_name(tg_requires_grad(tg_tensor_new(TG_SHAPE(3, 4))), "W");
    tg_tensor *b = tg_set_name(tg_requires_grad(tg_tensor_new(TG_SHAPE(3))), "b");
    tg_fill_uniform_(W, NULL, -0.5, 0.5);
    tg_fill_(b, 0.1);
    /* an input batch of 2 vectors: a temporary that needs a gradient too */
    tg_tensor *x = tg_set_name(tg_requires_grad(tg_randn(TG_SHAPE(2, 4), NULL, 0, 1)), "x");

    tg_tensor *y = tg_tanh(tg_linear(x, W, b));  /* [2, 3] */
    tg_tensor *loss = tg_set_name(tg_sum(y), "loss");
    tg_backward(loss);

    printf("loss = %.6f\n", tg_item(loss));
    printf("dL/dW:\n");
    tg_print(tg_wrap_buffer(TG_SHAPE(3, 4), W->grad));
    printf("dL/db:\n");
    tg_print(tg_wrap_buffer(TG_SHAPE(3), b->grad));
    printf("dL/dx:\n");
    tg_print(tg_wrap_buffer(TG_SHAPE(2, 4), x->grad));

    tg_tape_print(stdout);
    const char *path = argc > 1 ? argv[1] : "build/tanh_layer.dot";
    FILE *f = fopen(path, "w");
    if (f) {
        tg_tape_dot(f, loss);
        fclose(f);
        printf("graph written to %s\n", path);
    }
    tg_tape_reset();  /* x, y, loss and the tape are gone; W and b stay */
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tape_free_all();
    return 0;
}
