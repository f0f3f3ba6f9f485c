// walkthrough: every chapter of the walkthrough in order, into one trace directory, then a summary table.
//
// Runs build/steps/NN_name (the programs next to this one's folder) one after another with the same flags, shows
// progress, and prints per chapter: the verdict, the number of comparisons, the largest share of a tolerance used,
// the worst max-abs error, and the time on each backend (from OUT/trace.json). Exit status: 0 when every chapter
// exited 0, 1 when a comparison failed, 2 on bad input (a chapter's own exit status 2 is passed on).
// With --no-compare (one path alone, nothing compared) a chapter's verdict is its mode, "cuda-only" or "cpu-only",
// and the last line counts the chapters that ran, never as passed. Without the CUDA path (no GPU, or --device cpu)
// the first line says "no GPU: CPU reference only, nothing compared" and the last one counts the chapters whose
// self-checks passed and those not compared, never as passed.
// --verify-checksums goes to the first chapter only: it checks the bytes once, and a corrupt file stops the walk.
//
// Run: build/bin/walkthrough [--model DIR] [--prompt TEXT] [--out DIR] [--device auto|cuda|cpu] [--layer L]
//                            [--head H] [--precision bf16|fp32] [--lang en|zh] [--no-compare] [--only NN[,NN...]]
//                            [--tokens ID,ID,...] [--verify-checksums] [--device-check]

#include <dirent.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels.h"
#include "step.h"
#include "util.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// text padded to `width` terminal columns (a Chinese character takes 2, in 3 bytes of UTF-8), on the left or the right
static void put_col(const char *text, int width, bool left) {
    int cols = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xC0) != 0x80) cols += *p >= 0xE0 ? 2 : 1;
    int pad = width > cols ? width - cols : 0;
    printf("%*s%s%*s", left ? 0 : pad, "", text, left ? pad : 0, "");
}

static void usage(void) {
    printf("usage: walkthrough [--model DIR] [--prompt TEXT] [--out DIR] [--device auto|cuda|cpu] [--layer L]\n"
           "                   [--head H] [--precision bf16|fp32] [--lang en|zh] [--tokenizer FILE] [--no-compare]\n"
           "                   [--only NN,NN] [--tokens ID,ID,...] [--verify-checksums] [--device-check]\n\n"
           "Runs every chapter program (build/steps/NN_name) in order with these flags into one trace directory\n"
           "(default trace/), then prints a summary table: chapter, verdict, comparisons, the largest share of a\n"
           "tolerance used, the worst absolute error, and the time on each backend.\n"
           "--only 05,07 runs only those chapters. The flags are those of every chapter (see build/steps/00_config --help).\n"
           "--no-compare runs one path alone and compares nothing: with --device cuda the CPU reference does not run\n"
           "at all (the fast way through a large model); each chapter's verdict is then \"cuda-only\" (or \"cpu-only\"),\n"
           "not OK, and the summary counts the chapters that ran, not passed.\n"
           "Without the CUDA path (no GPU, or --device cpu) nothing is compared with a GPU: the summary counts the\n"
           "chapters whose CPU self-checks passed and those not compared, not passed.\n"
           "--verify-checksums: the first chapter checks the CRC-32 of every zip entry of the checkpoint (once).\n"
           "--device-check: only print whether the CUDA path will run (the no-GPU line, or the GPU's name), and exit 0.\n"
           "Exit status: 0 when every chapter passed (with --no-compare: ran), 1 when a comparison failed or a chapter\n"
           "failed, 2 on bad input.\n");
}

int main(int argc, char **argv) {
    const char *out_dir = "trace", *only = NULL;
    bool no_compare = false, verify = false, cpu_asked = false, zh = false, device_check = false;
    // flags passed through to every chapter
    char **pass = xcalloc((size_t)argc + 4, sizeof(char *));
    int n_pass = 0;
    static const char *with_value[] = {"--model", "--prompt", "--out", "--device", "--layer", "--head",
                                       "--precision", "--lang", "--tokenizer", "--tokens"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "--no-compare")) {
            if (!strcmp(argv[i], "--no-compare")) no_compare = true;
            pass[n_pass++] = argv[i];
            continue;
        }
        if (!strcmp(argv[i], "--verify-checksums") || !strcmp(argv[i], "--device-check")) {
            verify |= !strcmp(argv[i], "--verify-checksums");
            device_check |= !strcmp(argv[i], "--device-check");
            continue;
        }
        if (!strcmp(argv[i], "--only")) {
            if (i + 1 >= argc) usage_error("walkthrough", "--only needs a value");
            only = argv[++i];
            continue;
        }
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(argv[i], with_value[k])) known = true;
        if (!known) usage_error("walkthrough", "unknown argument '%s'", argv[i]);
        if (i + 1 >= argc) usage_error("walkthrough", "%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--out")) out_dir = argv[i + 1];
        if (!strcmp(argv[i], "--device")) cpu_asked = !strcmp(argv[i + 1], "cpu");
        if (!strcmp(argv[i], "--lang")) zh = !strcmp(argv[i + 1], "zh");  // the chapters check the value
        pass[n_pass++] = argv[i], pass[n_pass++] = argv[++i];
    }

    if (device_check) {
        char name[160];
        if (cpu_asked || cuda_device_count() == 0) printf("%s\n", step_no_gpu_line(cpu_asked, zh));
        else cuda_device_describe(0, name, sizeof name), printf("GPU: %s: the CUDA path runs and is compared with the CPU reference\n", name);
        free(pass);
        return 0;
    }

    // the chapter programs: ../steps/[0-9][0-9]_* next to this executable
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) fatal("cannot find my own executable");
    exe[len] = 0;
    char *steps_dir = path_join(dirname(dirname(exe)), "steps");
    DIR *d = opendir(steps_dir);
    if (!d) fatal("%s: no chapter programs (run `make`)", steps_dir);
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strlen(e->d_name) < 4 || e->d_name[0] < '0' || e->d_name[0] > '9' || e->d_name[2] != '_') continue;
        if (only) {
            char nn[3] = {e->d_name[0], e->d_name[1], 0};
            if (!strstr(only, nn)) continue;
        }
        names = xrealloc(names, (size_t)(n + 1) * sizeof(char *));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    if (n == 0) input_error(steps_dir, "no chapter programs matched");

    // said once, first: without the CUDA path nothing below is a comparison with a GPU (a chapter exits 2 for
    // --device cuda without one)
    if (!no_compare && (cpu_asked || cuda_device_count() == 0)) printf("%s\n", step_no_gpu_line(cpu_asked, zh));
    fflush(stdout);

    // the first chapter starts a fresh trace.json: an old index would mix runs
    char *index = path_join(out_dir, "trace.json");
    unlink(index);

    int worst_status = 0;
    int *status = xcalloc((size_t)n, sizeof(int));
    double t_all = now_seconds();
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "[%d/%d] %s ...\n", i + 1, n, names[i]);
        char *prog = path_join(steps_dir, names[i]);
        char **args = xcalloc((size_t)n_pass + 3, sizeof(char *));
        args[0] = prog;
        for (int k = 0; k < n_pass; k++) args[k + 1] = pass[k];
        if (verify && i == 0) args[n_pass + 1] = "--verify-checksums";
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) fatal("fork failed");
        if (pid == 0) {
            execv(prog, args);
            perror(prog);
            _exit(127);
        }
        int ws;
        waitpid(pid, &ws, 0);
        status[i] = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
        if (status[i] == 2) {  // bad input: every chapter would say the same; stop here
            fprintf(stderr, "error: %s rejected its input (exit 2); stopping\n", names[i]);
            return 2;
        }
        if (status[i] > worst_status) worst_status = status[i];
        free(prog), free(args);
    }
    double secs = now_seconds() - t_all;

    // the summary, from trace.json
    json_error_t err;
    json_t *root = json_load_file(index, 0, &err);
    int vw = no_compare ? 9 : 7;  // the verdict column fits "cuda-only"
    int cw = 16;                  // the chapter column fits the longest id ("18_tensor_parallel")
    for (int i = 0; i < n; i++)
        if ((int)strlen(names[i]) > cw) cw = (int)strlen(names[i]);
    const char *heads[8] = {"chapter", "verdict", "cmp", "tol used", "max abs", "cpu ms", "cuda ms", "total s"};
    const char *heads_zh[8] = {"章节", "结论", "比较", "容差占用", "最大误差", "cpu ms", "cuda ms", "总计 s"};
    const int widths[8] = {cw, vw, 6, 10, 11, 10, 10, 9};
    printf("\n");
    for (int c = 0; c < 8; c++) {
        if (c) printf(" ");
        put_col(zh ? heads_zh[c] : heads[c], widths[c], c < 2);
    }
    printf("\n");
    printf("%.*s %.*s %6s %10s %11s %10s %10s %9s\n", cw, "--------------------------------", vw, "---------", "------",
           "----------", "-----------", "----------", "----------", "---------");
    int n_failed = 0, n_cuda = 0, n_self_checked = 0;  // chapters compared with CUDA, and checked on the CPU alone
    for (int i = 0; i < n; i++) {
        json_t *step = NULL, *steps = root ? json_object_get(root, "steps") : NULL;
        size_t k;
        json_t *v;
        json_array_foreach(steps, k, v) {
            if (!strcmp(json_string_value(json_object_get(v, "id")) ?: "", names[i])) step = v;
        }
        int n_cmp = 0, n_bad = 0;
        double tol_used = 0, max_abs = 0;
        json_t *cmps = step ? json_object_get(step, "comparisons") : NULL;
        json_array_foreach(cmps, k, v) {
            n_cmp++;
            if (strcmp(json_string_value(json_object_get(v, "verdict")) ?: "", "OK")) n_bad++;
            double tu = json_number_value(json_object_get(v, "tol_used")), ma = json_number_value(json_object_get(v, "max_abs"));
            if (tu > tol_used) tol_used = tu;
            if (ma > max_abs) max_abs = ma;
        }
        json_t *tm = step ? json_object_get(step, "timings") : NULL;
        json_t *cpu = tm ? json_object_get(tm, "cpu_ms") : NULL, *cuda = tm ? json_object_get(tm, "cuda_ms") : NULL;
        json_t *total = tm ? json_object_get(tm, "total_ms") : NULL;
        // a --no-compare chapter's verdict is its mode ("cuda-only", "cpu-only"): it ran, nothing was checked
        const char *mode = step ? json_string_value(json_object_get(step, "mode")) : NULL;
        const char *verdict = status[i] ? "FAIL" : no_compare ? (mode ? mode : "ran") : n_cmp ? "OK" : "ran";
        if (status[i]) n_failed++;
        else if (n_cmp && mode && !strcmp(mode, "cuda+cpu")) n_cuda++;
        else if (n_cmp && mode && !strcmp(mode, "cpu")) n_self_checked++;
        char cpu_s[32] = "-", cuda_s[32] = "-", tol_s[32] = "-", abs_s[32] = "-", total_s[32] = "-";
        if (total) snprintf(total_s, sizeof total_s, "%.1f", json_number_value(total) / 1e3);
        if (cpu) snprintf(cpu_s, sizeof cpu_s, "%.1f", json_number_value(cpu));
        if (cuda) snprintf(cuda_s, sizeof cuda_s, "%.1f", json_number_value(cuda));
        if (n_cmp) snprintf(tol_s, sizeof tol_s, "%.0f%%", 100 * tol_used), snprintf(abs_s, sizeof abs_s, "%.2e", max_abs);
        char cmp_s[32] = "     -";
        if (!no_compare) snprintf(cmp_s, sizeof cmp_s, "%3d/%-2d", n_cmp - n_bad, n_cmp);
        printf("%-*s %-*s %s %10s %11s %10s %10s %9s\n", cw, names[i], vw, verdict, cmp_s, tol_s, abs_s, cpu_s, cuda_s,
               total_s);
    }
    if (no_compare)
        printf(zh ? "\n%d 个章节%s，%.1f s：%d 个运行，%d 个失败；未做比较（--no-compare）。Trace：%s/trace.json\n"
                  : "\n%d chapter%s in %.1f s: %d ran, %d failed; nothing compared (--no-compare). Trace: %s/trace.json\n",
               n, zh ? "" : plural(n), secs, n - n_failed, n_failed, out_dir);
    else if (n_cuda == 0)  // the CPU reference alone: chapters are self-checked or not compared, never "passed"
        printf(zh ? "\n%d 个章节%s，%.1f s：%s：%d 个在 CPU 上自检通过，%d 个未比较，%d 个失败。Trace：%s/trace.json\n"
                  : "\n%d chapter%s in %.1f s: %s: %d self-checked on the CPU, %d not compared, %d failed. Trace: %s/trace.json\n",
               n, zh ? "" : plural(n), secs, step_no_gpu_line(cpu_asked, zh), n_self_checked, n - n_failed - n_self_checked,
               n_failed, out_dir);
    else
        printf(zh ? "\n%d 个章节%s，%.1f s：%d 个通过，%d 个失败。Trace：%s/trace.json\n"
                  : "\n%d chapter%s in %.1f s: %d passed, %d failed. Trace: %s/trace.json\n",
               n, zh ? "" : plural(n), secs, n - n_failed, n_failed, out_dir);
    if (root) json_decref(root);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names), free(status), free(index), free(steps_dir), free(pass);
    return worst_status ? 1 : 0;
}
