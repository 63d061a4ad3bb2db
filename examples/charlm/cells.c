/*
 * examples/charlm/cells.c - cell types the tool knows by name beyond the
 * built-in lstm, gru, rnn (rnn_tanh) and rnn_relu.
 *
 * To train a cell of your own with `charlm train --cell NAME`: write its
 * step as ops (no derivative: the tape differentiates it), give it a
 * tg_cell_type (examples/common/cells.c has several), and register it
 * below. Checkpoints store the name, so
 * sample and eval find the cell again. Its own parameters (w_ci_l0 ...)
 * are saved with the rest; PyTorch's nn.LSTM knows nothing of them.
 */
#include "charlm.h"
#include "examples/common/cells.h"

void cl_register_cells(void)
{
    /* the cells written in user code for the examples (peephole, mgu,
     * ln_lstm, ...: examples/common/cells.c) */
    ex_register_cells();
}
