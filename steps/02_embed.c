// 02_embed: tokens to embeddings.
//
// Each token id selects one row of tok_embeddings.weight [V, D]: the [T] ids become token_embeddings_unnormalized
// [T, D] (bf16, as the tutorial's `.to(torch.bfloat16)`). The tutorial copies the whole 128256 x 4096 table into a
// float32 nn.Embedding first (2.1 GB); here the rows are read in place from the memory-mapped checkpoint.
// Run: build/steps/02_embed    Outputs: OUT/02_embed/token_embeddings_unnormalized.npy [T, D].
#include "kernels.h"
#include "step.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "02_embed");
    const int T = s.T, D = s.cfg->dim, V = s.cfg->vocab_size;
    const Tensor *table;
    step_weight(&s, &table, "tok_embeddings.weight");
    step_shape(&s, "tok_embeddings.weight", table->shape, table->ndim, dtype_name(table->dtype));

    // token_embeddings_unnormalized = embedding_layer(tokens).to(torch.bfloat16)
    float *emb_cpu = NULL, *emb_cuda = NULL;
    if (s.cpu) {  // common/ref/ref_ops.c: the ground truth
        double t0 = step_clock();
        emb_cpu = step_buf(&s, (size_t)T * D);
        embedding_forward_cpu(emb_cpu, s.tokens, step_weight(&s, NULL, "tok_embeddings.weight"), T, D, V, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/embedding.cu on the same tokens
        double t0 = step_clock();
        int32_t *d_tokens = step_dev_alloc(&s, (size_t)T * sizeof(int32_t));
        cuda_memcpy_h2d(d_tokens, s.tokens, (size_t)T * sizeof(int32_t));
        void *d_emb = step_dev_act(&s, NULL, (size_t)T * D);
        embedding_forward_cuda(d_emb, d_tokens, step_weight_dev(&s, "tok_embeddings.weight"), T, D, V, s.prec);
        emb_cuda = step_get_act(&s, d_emb, (size_t)T * D);
        step_add_ms(&s, true, t0);
    }
    int64_t shape[2] = {T, D};
    // a copy of bf16 rows: equal, so the tolerance of an activation (one bf16 rounding) is not even used
    if (s.cpu && s.cuda) step_compare_act(&s, "token_embeddings_unnormalized", emb_cpu, emb_cuda, shape, 2);

    step_show(&s, "token_embeddings_unnormalized", s.cpu ? emb_cpu : emb_cuda, shape, 2, "bf16");
    step_explain(&s,
                 "[T x 1] tokens are now [T x dim] embeddings: every token is a vector of dim numbers. The same token "
                 "always gets the same vector here (the three 'the' tokens are identical rows); position enters only "
                 "later, through RoPE.",
                 "[T x 1] 的 token 现在是 [T x dim] 的嵌入：每个 token 是 dim 个数字组成的向量。同一个 token 在这里总是得到"
                 "同一个向量（三个 “the” 的行完全相同）；位置信息要到后面的 RoPE 才加入。");
    return step_finish(&s);
}
