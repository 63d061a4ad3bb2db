/*
 * nn/dist_internal.h - internal to the library (not installed): what
 * nn/dist.c (ranks, messages) shares with nn/dist_grads.c (the gradient
 * sums). See nn/dist.h for the public side.
 */
#ifndef TG_NN_DIST_INTERNAL_H
#define TG_NN_DIST_INTERNAL_H

#include "nn/dist.h"

#ifdef TG_HAVE_MPI
#include <mpi.h>

/* tg_real as MPI knows it */
#ifdef TG_DOUBLE
#define TG_MPI_REAL MPI_DOUBLE
#else
#define TG_MPI_REAL MPI_FLOAT
#endif

/* true between MPI_Init and MPI_Finalize */
bool tg_dist_mpi_on(void);
/* an MPI call's result: 0, or -1 after reporting it (tg_error) */
int tg_dist_mpi_check(int rc, const char *what);
#endif

/* seconds on the monotonic clock */
double tg_dist_now(void);

#endif
