// wt-inspect: what is in a checkpoint. Verifies the bytes (the CRC-32 of every zip entry of a .pth against the one
// the zip states; the exact tiling of a .safetensors buffer), prints the config with its derived values (when there
// is one), then one line per tensor:
//
//     NAME DTYPE [d0, d1, ...] offset=BYTES crc32=XXXXXXXX
//
// offset is where element [0, 0, ...] lies in its file (file=NAME is added when the checkpoint has several files;
// offset=joined for a tensor rebuilt from model-parallel shards). crc32 is zlib's CRC-32 of the tensor's bytes in
// row-major order (a strided view is read as torch's t.contiguous() would be), the same number as Python's
// zlib.crc32(t.contiguous().view(torch.uint8).numpy()). Checksums are on by default when the tensors total at most
// 1 GiB (they read every byte); --checksums or --no-checksums decide otherwise. Control characters in names are
// printed escaped (\n, \xNN), so every tensor stays on one line.
//
// Build: make build/bin/wt-inspect
// Run:   build/bin/wt-inspect build/models/tiny
//        build/bin/wt-inspect consolidated.00.pth --dump layers.0.attention.wq.weight wq.npy
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/checkpoint.h"
#include "formats/npy.h"

static const char *PROG = "wt-inspect";

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s PATH [--dump NAME FILE.npy]... [--checksums | --no-checksums] [--no-check] [--no-verify]\n"
            "\n"
            "PATH is a Meta directory (params.json + consolidated.NN.pth), an HF directory (config.json +\n"
            "*.safetensors), or one .pth or .safetensors file.\n"
            "\n"
            "First verifies the bytes: the CRC-32 of every zip entry of a .pth against the one the zip states (in\n"
            "parallel; a mismatch exits 2 naming the first bad tensor), or that the tensors of a .safetensors file\n"
            "tile its buffer exactly (that format has no checksums). Then prints the config and its derived values\n"
            "and one line per tensor:\n"
            "    NAME DTYPE [d0, d1, ...] offset=BYTES crc32=XXXXXXXX\n"
            "crc32 is zlib's CRC-32 of the tensor's bytes in row-major order.\n"
            "\n"
            "A mixture-of-experts model (MiniMind's MoE, Mixtral) has, per layer L, instead of feed_forward.w1/w2/w3\n"
            "(names as we present them, whatever the file calls them):\n"
            "    layers.L.feed_forward.gate.weight              [E, D]  the router: gate_scores = softmax(x . Wg^T)\n"
            "    layers.L.feed_forward.experts.e.w1.weight      [F, D]  routed expert e: gate_proj (MiniMind), w1 (Mixtral)\n"
            "    layers.L.feed_forward.experts.e.w3.weight      [F, D]  up_proj / w3\n"
            "    layers.L.feed_forward.experts.e.w2.weight      [D, F]  down_proj / w2\n"
            "    layers.L.feed_forward.shared_experts.s.w1/w2/w3        shared expert s (MiniMind: every token, weight 1)\n"
            "and the config's n_routed_experts (E), num_experts_per_tok (k), n_shared_experts; the summary line says how\n"
            "many parameters there are and how many a token uses (the gate, k routed and every shared expert).\n"
            "\n"
            "  --dump NAME FILE.npy  write tensor NAME as .npy (bf16 as float32, other dtypes as they are); repeatable\n"
            "  --checksums           compute the CRC-32 of every tensor (default when they total <= 1 GiB)\n"
            "  --no-checksums        never compute them\n"
            "  --no-check            with a config, skip checking that every tensor it implies is present with its shape\n"
            "  --no-verify           skip the CRC-32 of the zip entries (reading every byte of a 16 GB file takes seconds)\n"
            "  --help                this text\n"
            "\n"
            "Exit status: 0 ok, 2 bad input (the message names the file), 1 internal failure.\n",
            PROG);
}

// The mapped file that holds this tensor's bytes, or -1 (a buffer the checkpoint built).
static int file_of(const Checkpoint *ck, const Tensor *t) {
    const uint8_t *p = t->data;
    for (int i = 0; i < ck->n_files; i++)
        if (ck->files[i].data && p >= ck->files[i].data && p <= ck->files[i].data + ck->files[i].size) return i;
    return -1;
}

static const char *kind_name(CheckpointKind k) {
    switch (k) {
    case CKPT_META_DIR: return "Meta directory";
    case CKPT_HF_DIR: return "Hugging Face directory";
    case CKPT_PTH_FILE: return "torch.save file";
    case CKPT_SAFETENSORS_FILE: return "safetensors file";
    }
    return "?";
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int checksums = -1;  // -1: decide by size
    bool check = true, verify = true;
    const char **dump_names = xcalloc((size_t)argc, sizeof(char *)), **dump_files = xcalloc((size_t)argc, sizeof(char *));
    int n_dumps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--dump") == 0) {
            if (i + 2 >= argc) usage_error(PROG, "--dump needs NAME and FILE.npy");
            dump_names[n_dumps] = argv[i + 1];
            dump_files[n_dumps++] = argv[i + 2];
            i += 2;
        } else if (strcmp(a, "--checksums") == 0) {
            checksums = 1;
        } else if (strcmp(a, "--no-checksums") == 0) {
            checksums = 0;
        } else if (strcmp(a, "--no-check") == 0) {
            check = false;
        } else if (strcmp(a, "--no-verify") == 0) {
            verify = false;
        } else if (a[0] == '-' && a[1]) {
            usage_error(PROG, "unknown option %s", a);
        } else if (!path) {
            path = a;
        } else {
            usage_error(PROG, "one PATH only (got %s and %s)", path, a);
        }
    }
    if (!path) usage_error(PROG, "PATH is required");

    double t0 = now_seconds();
    Checkpoint ck;
    checkpoint_open(&ck, path);
    double t_open = now_seconds() - t0;
    // Every --dump name must exist before anything is written.
    for (int i = 0; i < n_dumps; i++)
        if (!checkpoint_find(&ck, dump_names[i])) input_error(path, "--dump: no tensor named %s", dump_names[i]);
    if (ck.has_config && check) checkpoint_check_against_config(&ck);

    // The bytes before anything is printed: a corrupt file gives one line and exit 2, not a listing of it.
    double t_verify = now_seconds();
    uint64_t verified_bytes = 0;
    char err[1024];
    if (verify && !checkpoint_verify(&ck, &verified_bytes, err, sizeof err)) input_error(NULL, "%s", err);
    t_verify = now_seconds() - t_verify;

    size_t total_bytes = 0;
    for (int i = 0; i < ck.n_tensors; i++) total_bytes += tensor_nbytes(&ck.tensors[i]);
    if (checksums < 0) checksums = total_bytes <= ((size_t)1 << 30);

    printf("checkpoint: %s (%s, %d file%s, opened in %.3f s)\n", path, kind_name(ck.kind), ck.n_files, plural(ck.n_files), t_open);
    if (ck.has_config) {
        printf("config:\n");
        config_print(&ck.cfg, 2);
    } else {
        printf("config: none (a single file holds tensors only)\n");
    }
    if (ck.tokenizer_path) printf("tokenizer: %s\n", ck.tokenizer_path);
    if (ck.n_checked == 0)
        printf("verified: the tensors tile each safetensors buffer exactly (the format has no checksums)\n");
    else if (verify)
        printf("verified: CRC-32 of %d zip entries (%.3f GB) match the zip's directory (%.2f s)\n", ck.n_checked,
               (double)verified_bytes / 1e9, t_verify);
    else
        printf("verified: CRC-32 not checked (--no-verify)\n");
    if (ck.has_config && config_is_moe(&ck.cfg)) {
        // a token runs the gate, k of the E routed experts and every shared expert in each layer
        const Config *c = &ck.cfg;
        double all = 0, expert = 3.0 * c->dim * c->ffn_hidden;
        for (int i = 0; i < ck.n_tensors; i++) all += (double)tensor_numel(&ck.tensors[i]);
        double unused = (double)c->n_layers * (c->n_routed_experts - c->num_experts_per_tok) * expert;
        printf("mixture of experts: in each of the %d layers a gate [%d, %d] scores %d routed experts; a token runs "
               "the top %d of them and %d shared expert%s, each a SwiGLU FFN of F = %d (feed_forward.gate, "
               "feed_forward.experts.E.w1/w2/w3, feed_forward.shared_experts.S.*)\n",
               c->n_layers, c->n_routed_experts, c->dim, c->n_routed_experts, c->num_experts_per_tok,
               c->n_shared_experts, c->n_shared_experts == 1 ? "" : "s", c->ffn_hidden);
        printf("parameters: %.4g in the file, %.4g used per token (%.0f%%)\n", all, all - unused,
               all > 0 ? 100.0 * (all - unused) / all : 0.0);
    }
    printf("tensors: %d, %zu bytes%s\n", ck.n_tensors, total_bytes, checksums ? "" : " (checksums off: --checksums to compute them)");
    for (int i = 0; i < ck.n_tensors; i++) {
        const Tensor *t = &ck.tensors[i];
        char shape[160], name[512];
        printf("%s %s %s", escape_controls(t->name, name, sizeof name), dtype_name(t->dtype), shape_str(t->shape, t->ndim, shape, sizeof shape));
        int f = file_of(&ck, t);
        if (f < 0) {
            printf(" offset=joined");
        } else {
            if (ck.n_files > 1) {
                const char *slash = strrchr(ck.files[f].path, '/');
                printf(" file=%s", slash ? slash + 1 : ck.files[f].path);
            }
            printf(" offset=%zu", (size_t)((const uint8_t *)t->data - ck.files[f].data));
        }
        if (checksums) printf(" crc32=%08x", tensor_crc32(t));
        printf("\n");
    }
    fflush(stdout);
    for (int i = 0; i < n_dumps; i++) {
        npy_write_tensor(dump_files[i], checkpoint_find(&ck, dump_names[i]));
        fprintf(stderr, "wrote %s (%s)\n", dump_files[i], dump_names[i]);
    }
    checkpoint_close(&ck);
    free(dump_names);
    free(dump_files);
    return 0;
}
