// engine_ranks.h: the processes of tensor parallelism (generate --tp N, bench --tp N): one process per GPU, as
// torchrun starts one per GPU for Meta's model.py. The program the user started becomes the coordinator: it starts
// N rank processes (this same program, /proc/self/exe, with "--tp-rank R --tp-fd FD" put after argv[0]), sends
// each the same message through a pipe (the NCCL unique id, made once by the coordinator: kernels.h
// nccl_unique_id), relays what they print and waits. Rank r drives GPU r; the ranks then talk over NCCL
// (kernels/engine_model.cu).
//
// Failure: the first rank that exits non-zero or dies ends the run. The coordinator stops the other ranks (SIGTERM,
// SIGKILL 5 s later), prints ONE line naming the rank and its cause ("generate: rank 1 of 2: fatal: ..."), and
// exits with the rank's status (2: bad input, 1: anything else, a signal included). A rank whose coordinator dies
// is killed by the kernel (PR_SET_PDEATHSIG). Nothing waits on a peer that is gone.
//
// Output: rank 0's stdout is the program's stdout and its stderr lines pass through as they come, except an
// "error: "/"fatal: " line, which is held for the failure line; the other ranks' stdout goes to /dev/null and their
// stderr is shown only with verbose, each line after "rank R: ".
//
// Plain C, no CUDA: the coordinator never touches the GPU (a process that forks must not hold a CUDA context).
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct TpRanks TpRanks;

// In main(), first thing: in a rank process removes "--tp-rank R --tp-fd FD" (right after argv[0]) from argv and
// returns R with *fd the coordinator's pipe; in any other process returns -1 and leaves argv alone.
int tp_rank_from_args(int *argc, char **argv, int *fd);
// In a rank: the coordinator's message, exactly `bytes` (exits 1 saying so when the coordinator has gone).
void tp_rank_receive(int fd, void *msg, size_t bytes);

// The coordinator: starts n rank processes with the program's own argv (argv[0] names it in messages).
TpRanks *tp_ranks_start(int n, int argc, char *const *argv, bool verbose);
// The same message to every rank (then their pipes are closed).
void tp_ranks_send(TpRanks *r, const void *msg, size_t bytes);
// Relays the ranks' output and waits for all of them; returns the exit status the coordinator should exit with
// (see above). Frees r.
int tp_ranks_wait(TpRanks *r);

// The whole coordinator of generate/bench --tp n: sets NCCL_NVLS_ENABLE=0 (with verbose, says so), makes the NCCL
// unique id, starts the n ranks, sends it to them and waits; returns the exit status (tp_ranks_wait's).
int tp_coordinate(int n, int argc, char *const *argv, bool verbose);
