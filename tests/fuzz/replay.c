// replay.c: main() for a harness built without libFuzzer: runs it once on each input file, so that `make test` can
// replay the regression corpus under AddressSanitizer + UndefinedBehaviorSanitizer without clang.
//
// Usage: replay_NAME [--timeout S] FILE_OR_DIR...    (a directory: every regular file in it, sorted by name)
// Each input gets at most S seconds (default 10): one that takes longer is reported as a hang and the run exits 1,
// as one that crashes does (the sanitizer's report names the problem; the last "input:" line names the file).
// Ends with "replayed N inputs in T s (slowest: X s, FILE)".
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include "fuzz.h"
#include "util.h"

static const char *current = "?";

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "replay: HANG: an input ran past the timeout: ";
    ssize_t w = write(2, msg, sizeof msg - 1);
    w = write(2, current, strlen(current));
    w = write(2, "\n", 1);
    (void)w;
    _exit(1);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int n_done;
static double slowest;
static char *slowest_name;

static void run_file(const char *path, int timeout) {
    size_t len;
    char *buf = read_whole_file(path, &len);
    // An exact-size copy: a read one byte past the input is then a heap overflow that AddressSanitizer reports.
    uint8_t *data = malloc(len ? len : 1);
    memcpy(data, buf, len);
    free(buf);
    current = path;
    fprintf(stderr, "input: %s (%zu bytes)\n", path, len);
    double t0 = now_seconds();
    alarm((unsigned)timeout);
    LLVMFuzzerTestOneInput(data, len);
    alarm(0);
    double dt = now_seconds() - t0;
    if (dt > slowest || !slowest_name) {
        slowest = dt;
        free(slowest_name);
        slowest_name = xstrdup(path);
    }
    free(data);
    n_done++;
}

static void run_dir(const char *dir, int timeout) {
    DIR *d = opendir(dir);
    if (!d) input_error(dir, "cannot open the directory");
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *p = path_join(dir, de->d_name);
        if (file_exists(p)) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        run_file(names[i], timeout);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    int timeout = 10;
    signal(SIGALRM, on_alarm);
    double t0 = now_seconds();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = atoi(argv[++i]);
            if (timeout < 1) usage_error(argv[0], "--timeout wants seconds >= 1");
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--timeout S] FILE_OR_DIR...\nruns the harness once on each input (see tests/fuzz/replay.c)\n", argv[0]);
            return 0;
        } else if (dir_exists(argv[i])) {
            run_dir(argv[i], timeout);
        } else {
            run_file(argv[i], timeout);
        }
    }
    fprintf(stderr, "replayed %d inputs in %.2f s (slowest: %.3f s, %s)\n", n_done, now_seconds() - t0, slowest,
            slowest_name ? slowest_name : "-");
    free(slowest_name);
    return 0;
}
