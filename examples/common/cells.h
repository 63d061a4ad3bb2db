/*
 * examples/common/cells.h - the recurrent cells the examples write in user
 * code, defined once: each is a step function of ordinary ops and a
 * tg_cell_type (no derivative anywhere: the tape differentiates the step).
 *
 *   peephole         LSTM whose gates also see the cell state (Gers &
 *                    Schmidhuber 2000): three vectors w_ci, w_cf, w_co
 *   peephole_sliced  the same cell, slicing weight_hh into its four gate
 *                    blocks inside every step (what a compiled step makes
 *                    of a slicing cell: build/bench measures it)
 *   mgu              minimal gated unit: one gate (Zhou et al. 2016)
 *   ln_lstm          LSTM with layer norm of its gate pre-activations and
 *                    of the cell state (Ba, Kiros & Hinton 2016)
 *   hard_gate        h' = m tanh(a_n) + (1 - m) h with m = [a_m > 0], a
 *                    hard 0/1 mask trained through tg_step_ste
 *   soft_gate        the same cell with m = sigmoid(a_m)
 */
#ifndef EXAMPLES_COMMON_CELLS_H
#define EXAMPLES_COMMON_CELLS_H

#include "nn/cell.h"

extern const tg_cell_type ex_peephole_cell, ex_peephole_sliced_cell,
    ex_mgu_cell, ex_ln_lstm_cell, ex_hard_gate_cell, ex_soft_gate_cell;

/* Makes every cell above known by name (tg_cell_type_find, charlm
 * --cell, build/bench --cell). */
void ex_register_cells(void);

#endif
