// wt-convert: converts checkpoints and tokenizers between Hugging Face's and Meta's formats.
//
//   wt-convert tokenizer  IN/tokenizer.json OUT/tokenizer.model   HF byte-level BPE -> Meta's tiktoken file
//   wt-convert hf-to-meta HF_DIR OUT_DIR    config.json + *.safetensors (+ tokenizer.json)
//                                           -> params.json + consolidated.00.pth (+ tokenizer.model)
//   wt-convert meta-to-hf META_DIR OUT_DIR  params.json + consolidated.*.pth (+ tokenizer.model)
//                                           -> config.json + generation_config.json + model.safetensors
//                                              (+ original/tokenizer.model)
//   wt-convert reshard --mp N IN_DIR OUT_DIR  a Meta directory (any number of files) -> N model-parallel files
//                                           consolidated.00.pth .. (Meta's layout, common/tp.h); --mp 1 joins them
//                                           back, byte-identical to the file they were cut from
//
// Tensors keep their dtype and bytes; the rows of wq / wk move between Meta's interleaved RoPE pairs and HF's
// rotate_half halves (formats.md §5). The output of meta-to-hf loads with
// transformers.LlamaForCausalLM.from_pretrained(OUT_DIR). Exit status: 0 done, 2 bad input or usage, 1 internal.
//
// Build: make build/bin/wt-convert
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/convert.h"
#include "tokenizer/tokenizer_convert.h"
#include "util.h"

static const char *PROG = "wt-convert";

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: wt-convert COMMAND ARGS...\n"
            "\n"
            "commands:\n"
            "  tokenizer  IN/tokenizer.json OUT/tokenizer.model   HF tokenizer.json -> Meta's tokenizer.model\n"
            "  hf-to-meta HF_DIR OUT_DIR                          HF safetensors checkpoint -> Meta directory\n"
            "  meta-to-hf META_DIR OUT_DIR                        Meta checkpoint -> HF directory (transformers)\n"
            "  reshard --mp N IN_DIR OUT_DIR                      Meta checkpoint -> N model-parallel files, and back\n"
            "\n"
            "`wt-convert COMMAND --help` describes one command. Exit status: 0 done, 2 bad input, 1 internal error.\n");
}

typedef struct {
    const char *name, *args, *help;
    int n_args;
} Command;

static const Command COMMANDS[] = {
    {"tokenizer", "IN/tokenizer.json OUT/tokenizer.model",
     "Converts an HF byte-level BPE tokenizer.json (the Llama-3 one) into Meta's tokenizer.model: one line\n"
     "`base64(token bytes) rank` per token, sorted by rank (formats.md §4). The special tokens are not part of\n"
     "tokenizer.model; Meta's code adds them after the 128000 ranks.\n",
     2},
    {"hf-to-meta", "HF_DIR OUT_DIR",
     "Reads HF_DIR (config.json, model.safetensors or the shards of model.safetensors.index.json, tokenizer.json)\n"
     "and writes OUT_DIR/consolidated.00.pth (Meta's names, q/k rows un-permuted to Meta's interleaved RoPE\n"
     "pairs, same dtype), OUT_DIR/tokenizer.model (converted from tokenizer.json when present) and, last,\n"
     "OUT_DIR/params.json (multiple_of / ffn_dim_multiplier chosen so that Meta's FFN rule gives intermediate_size).\n",
     2},
    {"meta-to-hf", "META_DIR OUT_DIR",
     "Reads a Meta checkpoint directory (params.json, consolidated.NN.pth, tokenizer.model) and writes\n"
     "OUT_DIR/model.safetensors (HF names, q/k rows permuted to rotate_half order, same dtype),\n"
     "OUT_DIR/generation_config.json, OUT_DIR/original/tokenizer.model (a copy, when present) and, last,\n"
     "OUT_DIR/config.json for transformers' LlamaForCausalLM.\n",
     2},
    {"reshard", "--mp N IN_DIR OUT_DIR",
     "Reads a Meta checkpoint directory (params.json and consolidated.NN.pth: one file, or the N files of model\n"
     "parallelism, joined on load) and writes OUT_DIR/consolidated.00.pth .. consolidated.<N-1>.pth in the layout\n"
     "Meta's code loads with model_parallel_size = N (fairscale's layers): wq, wk, wv, w1, w3, output and\n"
     "tok_embeddings cut along dim 0 (whole heads, FFN rows, vocabulary rows per rank), wo and w2 along dim 1, the\n"
     "norms copied into every file; with N > n_kv_heads each kv head of wk/wv goes to N/n_kv_heads files. Then\n"
     "tokenizer.model and, last, params.json are copied. --mp 1 joins the files back into one, byte-identical to\n"
     "the file they were cut from (when our writer or torch.save made it: same archive folder, same records).\n"
     "N must split the model into whole pieces (n_heads, the FFN size and the vocabulary multiples of N; n_kv_heads\n"
     "a multiple of N, or N of n_kv_heads); otherwise exit 2 saying why. OUT_DIR must hold no checkpoint yet.\n",
     2},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_INPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_main(stdout);
        return 0;
    }
    const Command *cmd = NULL;
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) cmd = &COMMANDS[i];
    if (!cmd) {
        if (argv[1][0] == '-') usage_error(PROG, "unknown option %s", argv[1]);
        usage_error(PROG, "unknown command \"%s\" (tokenizer, hf-to-meta, meta-to-hf, reshard)", argv[1]);
    }
    const char *args[2];
    int n_args = 0, mp = 0;
    bool reshard = !strcmp(cmd->name, "reshard");
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: wt-convert %s %s\n\n%s", cmd->name, cmd->args, cmd->help);
            return 0;
        }
        if (reshard && !strcmp(argv[i], "--mp")) {
            char *end;
            if (i + 1 >= argc) usage_error(PROG, "reshard: --mp needs a value");
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 4096)
                usage_error(PROG, "reshard: --mp: expected a number of files >= 1, got '%s'", argv[i]);
            mp = (int)v;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != 0) usage_error(PROG, "%s: unknown option %s", cmd->name, argv[i]);
        if (n_args == cmd->n_args) usage_error(PROG, "%s: too many arguments (expected %s)", cmd->name, cmd->args);
        args[n_args++] = argv[i];
    }
    if (n_args != cmd->n_args) usage_error(PROG, "%s: expected %s", cmd->name, cmd->args);
    if (reshard && !mp) usage_error(PROG, "reshard: --mp N is required (the number of files to write)");

    double t0 = now_seconds();
    if (!strcmp(cmd->name, "tokenizer")) tokenizer_json_to_model(args[0], args[1]);
    else if (!strcmp(cmd->name, "hf-to-meta")) convert_hf_to_meta(args[0], args[1]);
    else if (reshard) convert_reshard(args[0], mp, args[1]);
    else convert_meta_to_hf(args[0], args[1]);
    fprintf(stderr, "wt-convert: %s %s -> %s done in %.1f s\n", cmd->name, args[0], args[1], now_seconds() - t0);
    return 0;
}
