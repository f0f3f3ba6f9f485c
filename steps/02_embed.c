// 02_embed: tokens to embeddings.
//
// Each token id selects one row of tok_embeddings.weight [V, D]: the [T] ids become token_embeddings_unnormalized
// [T, D] (bf16, as the tutorial's `.to(torch.bfloat16)`). The tutorial copies the whole 128256 x 4096 table into a
// float32 nn.Embedding first (2.1 GB); here the rows are read in place from the memory-mapped checkpoint.
// Run: build/steps/02_embed    Outputs: OUT/02_embed/token_embeddings_unnormalized.npy [T, D].
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "02_embed");
    const Tensor *table;
    step_weight(&s, &table, "tok_embeddings.weight");
    step_shape(&s, "tok_embeddings.weight", table->shape, table->ndim, dtype_name(table->dtype));

    LayerTrace lt;
    layer_trace_alloc(&lt, &s, 0, 0);
    if (s.cpu) {
        double t0 = step_clock();
        embed_tokens_cpu(&s, lt.x_in);
        step_add_ms(&s, false, t0);
    } else {
        embed_tokens_cuda(&s, lt.x_in);  // --no-compare: the CUDA path alone
    }
    int64_t shape[2] = {s.T, s.cfg->dim};
    step_show(&s, "token_embeddings_unnormalized", lt.x_in, shape, 2, "bf16");
    step_explain(&s,
                 "[T x 1] tokens are now [T x dim] embeddings: every token is a vector of dim numbers. The same token "
                 "always gets the same vector here (the three 'the' tokens are identical rows); position enters only "
                 "later, through RoPE.",
                 "[T x 1] 的 token 现在是 [T x dim] 的嵌入：每个 token 是 dim 个数字组成的向量。同一个 token 在这里总是得到"
                 "同一个向量（三个 “the” 的行完全相同）；位置信息要到后面的 RoPE 才加入。");
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_EMBED, NULL);
    layer_trace_free(&lt);
    return step_finish(&s);
}
