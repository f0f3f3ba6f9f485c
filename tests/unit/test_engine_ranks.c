// test_engine_ranks.c: the processes of tensor parallelism (kernels/engine_ranks.h) on the CPU: this program is both
// the coordinator (started by each case below in a child process, whose stdout, stderr, exit status and run time are
// checked) and the ranks (tp_ranks_start runs it again with "--tp-rank R --tp-fd FD"; argv[1] says how a rank
// behaves). The GPU work is replaced by what matters here: a rank that waits forever stands for one blocked in an
// NCCL collective whose peer is gone.
//   ok        every rank gets the coordinator's 128-byte message; rank 0's stdout and stderr come through, the
//             others' stderr does not (not verbose); exit 0
//   input     rank 1 exits 2 (bad input) while rank 0 waits: one line "rank 1 of 2: error: ...", exit 2, rank 0
//             stopped at once
//   crash     rank 2 is killed (SIGKILL) while ranks 0 and 1 wait: "rank 2 of 3: killed by signal 9", exit 1
//   fatal0    rank 0 fails (fatal) while rank 1 waits: "rank 0 of 2: fatal: ...", exit 1
//   stubborn  rank 1 fails while rank 0 ignores SIGTERM: SIGKILL after the grace period, exit 1 within ~6 s
//   orphan    the coordinator itself is killed: its ranks die with it (PR_SET_PDEATHSIG)
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine_ranks.h"
#include "util.h"

#define MSG_BYTES 128

static void fill_message(unsigned char *m) {
    for (int i = 0; i < MSG_BYTES; i++) m[i] = (unsigned char)(i * 37 + 11);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A rank: takes the message, then does what the case says. "wait" = blocked on a peer (30 s at most).
static int rank_main(int rank, int fd, const char *mode) {
    unsigned char msg[MSG_BYTES], want[MSG_BYTES];
    tp_rank_receive(fd, msg, sizeof msg);
    fill_message(want);
    if (memcmp(msg, want, sizeof msg) != 0) fatal("rank %d: the message differs from the coordinator's", rank);
    fprintf(stderr, "rank %d (pid %d) started\n", rank, (int)getpid());
    if (strcmp(mode, "ok") == 0) {
        if (rank == 0) printf("rank 0 says hello\n");
        return 0;
    }
    if (strcmp(mode, "input") == 0 && rank == 1) input_error("model/params.json", "n_heads: expected a positive integer");
    if (strcmp(mode, "fatal0") == 0 && rank == 0) fatal("engine_create: no CUDA device 0 (use --device cpu)");
    if (strcmp(mode, "crash") == 0 && rank == 2) {
        usleep(200000);
        raise(SIGKILL);
    }
    if (strcmp(mode, "stubborn") == 0) {
        if (rank == 1) {
            usleep(200000);
            fatal("nccl.cu:99: ncclAllReduce(...): NCCL error 6: remote process exited or there was a network error");
        }
        signal(SIGTERM, SIG_IGN);
    }
    sleep(30);  // waiting on a peer that never comes
    return 3;
}

typedef struct {
    int status;
    double seconds;
    char out[4096], err[4096];
} Run;

// The coordinator in a child process: n ranks of this program in mode `mode`; its output and status into *r.
static void coordinate(const char *self, const char *mode, int n, bool verbose, Run *r) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) fatal("pipe: %s", strerror(errno));
    fflush(stdout);
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1), dup2(err[1], 2);
        close(out[0]), close(err[0]), close(out[1]), close(err[1]);
        char *av[] = {(char *)self, (char *)mode, NULL};
        TpRanks *t = tp_ranks_start(n, 2, av, verbose);
        unsigned char msg[MSG_BYTES];
        fill_message(msg);
        tp_ranks_send(t, msg, sizeof msg);
        fflush(stdout);
        _exit(tp_ranks_wait(t));
    }
    close(out[1]), close(err[1]);
    size_t no = 0, ne = 0;
    for (;;) {  // both pipes to the end (small outputs: no deadlock reading them one after the other)
        ssize_t k = read(err[0], r->err + ne, sizeof r->err - 1 - ne);
        if (k <= 0) break;
        ne += (size_t)k;
    }
    for (;;) {
        ssize_t k = read(out[0], r->out + no, sizeof r->out - 1 - no);
        if (k <= 0) break;
        no += (size_t)k;
    }
    r->out[no] = r->err[ne] = 0;
    close(out[0]), close(err[0]);
    waitpid(pid, &r->status, 0);
    r->seconds = now() - t0;
    printf("-- %s, %d ranks: exit %d after %.2f s; stderr:\n%s", mode, n,
           WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1, r->seconds, r->err);
}

// Lines of the coordinator's stderr other than rank 0's "started" line (which passes through as it comes).
static int other_lines(const char *s) {
    int n = 0;
    for (const char *line = s; *line; ) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!(len > 12 && strncmp(line, "rank 0 (pid ", 12) == 0)) n++;
        if (!end) break;
        line = end + 1;
    }
    return n;
}
static int exit_code(const Run *r) { return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1; }

int main(int argc, char **argv) {
    int fd = -1;
    int rank = tp_rank_from_args(&argc, argv, &fd);
    if (rank >= 0) return rank_main(rank, fd, argc > 1 ? argv[1] : "ok");
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: test_engine_ranks\n  the coordinator and rank processes of --tp N on the CPU\n");
        return 0;
    }
    // orphaned ranks are re-parented to this process, so that it can see how they ended
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const char *self = "test_engine_ranks";
    Run r;

    coordinate(self, "ok", 3, false, &r);
    CHECK(exit_code(&r) == 0, "ok: exit %d", exit_code(&r));
    CHECK(strcmp(r.out, "rank 0 says hello\n") == 0, "ok: stdout '%s' (rank 0's only)", r.out);
    CHECK(strstr(r.err, "rank 0 (pid") && !strstr(r.err, "rank 1 (pid") && !strstr(r.err, "rank 2 (pid"),
          "ok: rank 0's stderr passes, the others' only with verbose: '%s'", r.err);
    coordinate(self, "ok", 2, true, &r);
    CHECK(exit_code(&r) == 0 && strstr(r.err, "rank 1: rank 1 (pid"), "ok, verbose: the other ranks' lines, prefixed");

    coordinate(self, "input", 2, false, &r);
    CHECK(exit_code(&r) == 2, "input: exit %d, expected 2", exit_code(&r));
    CHECK(other_lines(r.err) == 1 && strstr(r.err, "test_engine_ranks: rank 1 of 2: error: model/params.json: n_heads"),
          "input: one line naming rank 1 and its error: '%s'", r.err);
    CHECK(r.seconds < 3, "input: rank 0 still ran %.1f s after rank 1 failed", r.seconds);

    coordinate(self, "crash", 3, false, &r);
    CHECK(exit_code(&r) == 1, "crash: exit %d, expected 1", exit_code(&r));
    CHECK(other_lines(r.err) == 1 && strstr(r.err, "rank 2 of 3: killed by signal 9") != NULL, "crash: '%s'", r.err);
    CHECK(r.seconds < 3, "crash: the waiting ranks ran on for %.1f s", r.seconds);

    coordinate(self, "fatal0", 2, false, &r);
    CHECK(exit_code(&r) == 1, "fatal0: exit %d, expected 1", exit_code(&r));
    CHECK(other_lines(r.err) == 1 && strstr(r.err, "rank 0 of 2: fatal: engine_create: no CUDA device 0"),
          "fatal0: one line naming rank 0: '%s'", r.err);
    CHECK(r.seconds < 3, "fatal0: rank 1 ran on for %.1f s", r.seconds);

    coordinate(self, "stubborn", 2, false, &r);
    CHECK(exit_code(&r) == 1 && other_lines(r.err) == 1 && strstr(r.err, "rank 1 of 2: fatal: nccl.cu:99"),
          "stubborn: exit %d, '%s'", exit_code(&r), r.err);
    CHECK(r.seconds > 4 && r.seconds < 8, "stubborn: %.1f s (SIGTERM ignored: SIGKILL after 5 s)", r.seconds);

    // orphan: the coordinator is killed while its 2 ranks wait; they must die with it
    {
        int err[2];
        if (pipe(err) != 0) fatal("pipe");
        fflush(stdout);
        pid_t coord = fork();
        if (coord == 0) {
            dup2(err[1], 2);
            close(err[0]), close(err[1]);
            char *av[] = {(char *)self, "wait", NULL};
            TpRanks *t = tp_ranks_start(2, 2, av, true);
            unsigned char msg[MSG_BYTES];
            fill_message(msg);
            tp_ranks_send(t, msg, sizeof msg);
            _exit(tp_ranks_wait(t));
        }
        close(err[1]);
        // both ranks' "started" lines (verbose: rank 1's is relayed too), with their pids
        char buf[1024] = {0};
        size_t n = 0;
        int pids[2] = {0, 0};
        double t0 = now();
        while ((!pids[0] || !pids[1]) && now() - t0 < 10) {
            ssize_t k = read(err[0], buf + n, sizeof buf - 1 - n);
            if (k <= 0) break;
            n += (size_t)k;
            buf[n] = 0;
            for (int i = 0; i < 2; i++) {
                char key[32];
                snprintf(key, sizeof key, "rank %d (pid ", i);
                const char *p = strstr(buf, key);
                if (p) pids[i] = atoi(p + strlen(key));
            }
        }
        CHECK(pids[0] > 0 && pids[1] > 0, "orphan: the ranks' pids were not seen: '%s'", buf);
        kill(coord, SIGKILL);
        int st;
        waitpid(coord, &st, 0);
        int gone = 0;
        t0 = now();
        while (gone < 2 && now() - t0 < 5) {  // re-parented to this process (subreaper): reaped here
            for (int i = 0; i < 2; i++)
                if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                    gone++;
                    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "orphan: rank %d ended otherwise", i);
                    pids[i] = 0;
                }
            usleep(20000);
        }
        CHECK(gone == 2, "orphan: %d of 2 ranks still ran 5 s after the coordinator was killed", 2 - gone);
        for (int i = 0; i < 2; i++)
            if (pids[i] > 0) kill(pids[i], SIGKILL);
        close(err[0]);
        printf("-- orphan: the coordinator killed, %d of 2 ranks died with it within %.2f s\n", gone, now() - t0);
    }
    TEST_SUMMARY();
}
