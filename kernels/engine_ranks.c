// engine_ranks.c: the coordinator and rank processes of tensor parallelism (see engine_ranks.h).
#include "engine_ranks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernels.h"
#include "util.h"

#define LINE_MAX_BYTES 1024
#define KILL_GRACE_S 5.0

typedef struct {
    pid_t pid;
    int ctl;                   // write end of the message pipe (-1 once closed)
    int err;                   // read end of the rank's stderr (-1 at end of file)
    bool running;
    int status;                // waitpid status once it has exited
    char line[LINE_MAX_BYTES]; // the line being read
    size_t len;
    char held[LINE_MAX_BYTES]; // its last "error: "/"fatal: " line
} Rank;

struct TpRanks {
    const char *prog;
    int n;
    bool verbose;
    Rank *rank;
};

int tp_rank_from_args(int *argc, char **argv, int *fd) {
    if (*argc < 5 || strcmp(argv[1], "--tp-rank") != 0 || strcmp(argv[3], "--tp-fd") != 0) return -1;
    char *e1, *e2;
    long r = strtol(argv[2], &e1, 10), f = strtol(argv[4], &e2, 10);
    if (*e1 || *e2 || r < 0 || f < 0) fatal("%s: malformed --tp-rank %s --tp-fd %s", argv[0], argv[2], argv[4]);
    for (int i = 5; i <= *argc; i++) argv[i - 4] = argv[i];  // argv[argc] is NULL: moved too
    *argc -= 4;
    *fd = (int)f;
    return (int)r;
}

void tp_rank_receive(int fd, void *msg, size_t bytes) {
    size_t got = 0;
    while (got < bytes) {
        ssize_t k = read(fd, (char *)msg + got, bytes - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) fatal("tensor parallelism: the coordinator's pipe closed after %zu of %zu bytes", got, bytes);
        got += (size_t)k;
    }
    close(fd);
}

TpRanks *tp_ranks_start(int n, int argc, char *const *argv, bool verbose) {
    if (n < 1) fatal("tp_ranks_start: %d ranks", n);
    signal(SIGPIPE, SIG_IGN);  // a rank that died must not kill the coordinator through its pipe
    TpRanks *t = xcalloc(1, sizeof *t);
    const char *slash = strrchr(argv[0], '/');
    t->prog = slash ? slash + 1 : argv[0], t->n = n, t->verbose = verbose;
    t->rank = xcalloc((size_t)n, sizeof(Rank));
    const pid_t coordinator = getpid();
    const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char **av = xcalloc((size_t)argc + 5, sizeof(char *));  // the rank's argv, made before fork
    char rs[16], fs[16];
    av[0] = argv[0], av[1] = "--tp-rank", av[2] = rs, av[3] = "--tp-fd", av[4] = fs;
    for (int i = 1; i < argc; i++) av[i + 4] = argv[i];
    static const char exec_failed[] = "fatal: cannot start a rank: exec /proc/self/exe failed\n";
    fflush(stdout), fflush(stderr);
    for (int r = 0; r < n; r++) {
        int ctl[2], err[2];
        if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) fatal("tp_ranks_start: pipe: %s", strerror(errno));
        snprintf(rs, sizeof rs, "%d", r), snprintf(fs, sizeof fs, "%d", ctl[0]);
        pid_t pid = fork();
        if (pid < 0) fatal("tp_ranks_start: fork: %s", strerror(errno));
        if (pid == 0) {
            // the rank: dies with the coordinator; stderr to the coordinator; the message pipe kept across exec
            // (only async-signal-safe calls between fork and exec)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != coordinator) _exit(1);
            dup2(err[1], 2);
            if (r > 0 && null >= 0) dup2(null, 1);
            fcntl(ctl[0], F_SETFD, 0);
            execv("/proc/self/exe", av);
            if (write(2, exec_failed, sizeof exec_failed - 1) < 0) _exit(1);
            _exit(1);
        }
        close(ctl[0]), close(err[1]);
        Rank *k = &t->rank[r];
        k->pid = pid, k->ctl = ctl[1], k->err = err[0], k->running = true;
        fcntl(k->err, F_SETFL, fcntl(k->err, F_GETFL) | O_NONBLOCK);
    }
    if (null >= 0) close(null);
    free(av);
    return t;
}

void tp_ranks_send(TpRanks *t, const void *msg, size_t bytes) {
    for (int r = 0; r < t->n; r++) {
        Rank *k = &t->rank[r];
        size_t done = 0;
        while (k->ctl >= 0 && done < bytes) {  // a rank that has died already: tp_ranks_wait reports it
            ssize_t w = write(k->ctl, (const char *)msg + done, bytes - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
        if (k->ctl >= 0) close(k->ctl);
        k->ctl = -1;
    }
}

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

// One complete line of rank r's stderr: rank 0's pass through, an error line is held, the others' only with verbose.
static void rank_line(TpRanks *t, int r, const char *line) {
    Rank *k = &t->rank[r];
    if (starts_with(line, "error: ") || starts_with(line, "fatal: ")) {
        snprintf(k->held, sizeof k->held, "%s", line);
        return;
    }
    if (r == 0) fprintf(stderr, "%s\n", line);
    else if (t->verbose) fprintf(stderr, "rank %d: %s\n", r, line);
}

// Reads what rank r has written; returns false at end of file.
static bool drain(TpRanks *t, int r) {
    Rank *k = &t->rank[r];
    char buf[4096];
    for (;;) {
        ssize_t n = read(k->err, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return true;  // nothing more for now (EAGAIN)
        if (n == 0) {
            if (k->len) k->line[k->len] = 0, rank_line(t, r, k->line), k->len = 0;
            close(k->err);
            k->err = -1;
            return false;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || k->len + 1 >= sizeof k->line) {
                k->line[k->len] = 0;
                rank_line(t, r, k->line);
                k->len = 0;
                if (buf[i] == '\n') continue;
            }
            k->line[k->len++] = buf[i];
        }
    }
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tp_ranks_wait(TpRanks *t) {
    int failed = -1, running = t->n;
    double kill_at = 0;  // when the survivors get SIGKILL (after a failure)
    while (running > 0) {
        struct pollfd pf[64];
        int map[64], np = 0;
        for (int r = 0; r < t->n && np < 64; r++)
            if (t->rank[r].err >= 0) pf[np] = (struct pollfd){t->rank[r].err, POLLIN, 0}, map[np++] = r;
        if (np) poll(pf, (nfds_t)np, 100);
        else usleep(20000);
        for (int i = 0; i < np; i++)
            if (pf[i].revents) drain(t, map[i]);
        for (int r = 0; r < t->n; r++) {
            Rank *k = &t->rank[r];
            int st;
            if (!k->running || waitpid(k->pid, &st, WNOHANG) != k->pid) continue;
            k->running = false, k->status = st, running--;
            bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (!ok && failed < 0) {
                failed = r;
                const double until = seconds() + 1.0;  // its last words (the pipe ends with it)
                while (k->err >= 0 && drain(t, r) && seconds() < until) usleep(1000);
                for (int o = 0; o < t->n; o++)
                    if (t->rank[o].running) kill(t->rank[o].pid, SIGTERM);
                kill_at = seconds() + KILL_GRACE_S;
            }
        }
        if (failed >= 0 && running > 0 && seconds() > kill_at)
            for (int o = 0; o < t->n; o++)
                if (t->rank[o].running) kill(t->rank[o].pid, SIGKILL);
    }
    const double until = seconds() + 1.0;
    for (int r = 0; r < t->n; r++)  // the rest of the ranks' output (rank 0's statistics)
        while (t->rank[r].err >= 0 && drain(t, r) && seconds() < until) usleep(1000);
    for (int r = 0; r < t->n; r++)
        if (t->rank[r].err >= 0) close(t->rank[r].err);
    int code = 0;
    if (failed >= 0) {
        const Rank *k = &t->rank[failed];
        char cause[LINE_MAX_BYTES + 64];
        if (k->held[0]) snprintf(cause, sizeof cause, "%s", k->held);
        else if (WIFSIGNALED(k->status))
            snprintf(cause, sizeof cause, "killed by signal %d (%s)", WTERMSIG(k->status), strsignal(WTERMSIG(k->status)));
        else snprintf(cause, sizeof cause, "exited with status %d", WEXITSTATUS(k->status));
        fflush(stdout);
        fprintf(stderr, "%s: rank %d of %d: %s\n", t->prog, failed, t->n, cause);
        code = WIFEXITED(k->status) && WEXITSTATUS(k->status) == EXIT_INPUT ? EXIT_INPUT : 1;
    }
    free(t->rank);
    free(t);
    return code;
}

int tp_coordinate(int n, int argc, char *const *argv, bool verbose) {
    nccl_nvls_pin();
    if (verbose) {
        const char *slash = strrchr(argv[0], '/');
        fprintf(stderr, "%s: NCCL_NVLS_ENABLE=0 (set here, the ranks inherit it): NVLink multicast is never used\n",
                slash ? slash + 1 : argv[0]);
    }
    uint8_t id[NCCL_ID_BYTES];
    nccl_unique_id(id);  // NCCL's bootstrap root lives in this process until the ranks have joined
    TpRanks *t = tp_ranks_start(n, argc, argv, verbose);
    tp_ranks_send(t, id, sizeof id);
    return tp_ranks_wait(t);
}

void nccl_nvls_pin(void) {
    // not a setting of ours: NCCL reads it from the environment, so it is written there, whatever it held
    if (setenv("NCCL_NVLS_ENABLE", "0", 1) != 0) fatal("setenv NCCL_NVLS_ENABLE=0: %s", strerror(errno));
}
