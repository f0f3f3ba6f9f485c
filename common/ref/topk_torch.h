// topk_torch.h: the k largest of n floats in the order torch.topk returns them on the CPU, ties included.
//
// torch.topk(x, k) on the CPU (aten's topk kernel) copies (value, index) pairs into a buffer and, with the
// comparison "a comes before b when a.value > b.value" (strict: equal values are not ordered), runs
//     std::nth_element(first, first + k - 1, last) then std::sort(first, first + k - 1)   when k * 64 > n
//     std::partial_sort(first, first + k, last)                                          when k * 64 <= n
// and returns the first k pairs. Equal values therefore come out in the order those algorithms leave them, which
// is not "lower index first": torch.topk([0.25, 0.25, 0.25, 0.25], 2) gives indices [2, 3] (Debian's torch
// 1.13.1 with GCC 12's libstdc++; tests/reference/moe_reference.py --self-test checks these cases). A router only
// meets exact ties in degenerate cases (identical gate rows, a zero input), but then the experts it picks must be
// torch's. This file redoes the libstdc++ algorithms step by step (introselect: median-of-three pivot, unguarded
// partition, insertion sort below 4 elements; introsort with a final insertion sort; the heap used by
// partial_sort), written from their description, so that the same pairs end in the same places.
//
// Plain C, used by the CPU reference (ref_moe.c) and, compiled by nvcc, inside the router kernel (moe_gate.cu):
// one thread sorts one token's E scores in a local buffer.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define TOPK_FN static inline __host__ __device__
#else
#define TOPK_FN static inline
#endif

typedef struct {
    float v;
    int32_t i;
} TopkItem;

// torch's comparator for largest=true: NaN first, then larger values (never true for equal values).
TOPK_FN bool topk_before(TopkItem a, TopkItem b) { return (a.v != a.v && b.v == b.v) || a.v > b.v; }
TOPK_FN void topk_swap(TopkItem *a, TopkItem *b) { TopkItem t = *a; *a = *b; *b = t; }
TOPK_FN int topk_log2(int n) { int l = 0; while (n > 1) n >>= 1, l++; return l; }

TOPK_FN void topk_linear_insert(TopkItem *last) {  // shifts *last left past every element it comes before
    TopkItem val = *last;
    TopkItem *next = last - 1;
    while (topk_before(val, *next)) *last = *next, last = next, next--;
    *last = val;
}
TOPK_FN void topk_insertion_sort(TopkItem *first, TopkItem *last) {
    if (first == last) return;
    for (TopkItem *i = first + 1; i != last; i++) {
        if (topk_before(*i, *first)) {
            TopkItem val = *i;
            for (TopkItem *p = i; p != first; p--) *p = *(p - 1);
            *first = val;
        } else {
            topk_linear_insert(i);
        }
    }
}
TOPK_FN void topk_move_median_to_first(TopkItem *result, TopkItem *a, TopkItem *b, TopkItem *c) {
    if (topk_before(*a, *b)) {
        if (topk_before(*b, *c)) topk_swap(result, b);
        else if (topk_before(*a, *c)) topk_swap(result, c);
        else topk_swap(result, a);
    } else if (topk_before(*a, *c)) topk_swap(result, a);
    else if (topk_before(*b, *c)) topk_swap(result, c);
    else topk_swap(result, b);
}
TOPK_FN TopkItem *topk_partition_pivot(TopkItem *first, TopkItem *last) {
    topk_move_median_to_first(first, first + 1, first + (last - first) / 2, last - 1);
    TopkItem *pivot = first, *lo = first + 1, *hi = last;
    for (;;) {
        while (topk_before(*lo, *pivot)) lo++;
        hi--;
        while (topk_before(*pivot, *hi)) hi--;
        if (!(lo < hi)) return lo;
        topk_swap(lo, hi);
        lo++;
    }
}
// the heap partial_sort builds (a max-heap in the comparator's order: the root is the element that comes last)
TOPK_FN void topk_push_heap(TopkItem *first, long hole, long top, TopkItem value) {
    long parent = (hole - 1) / 2;
    while (hole > top && topk_before(first[parent], value)) first[hole] = first[parent], hole = parent, parent = (hole - 1) / 2;
    first[hole] = value;
}
TOPK_FN void topk_adjust_heap(TopkItem *first, long hole, long len, TopkItem value) {
    const long top = hole;
    long child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (topk_before(first[child], first[child - 1])) child--;
        first[hole] = first[child], hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        first[hole] = first[child - 1], hole = child - 1;
    }
    topk_push_heap(first, hole, top, value);
}
TOPK_FN void topk_make_heap(TopkItem *first, TopkItem *last) {
    long len = last - first;
    if (len < 2) return;
    for (long parent = (len - 2) / 2;; parent--) {
        topk_adjust_heap(first, parent, len, first[parent]);
        if (parent == 0) return;
    }
}
TOPK_FN void topk_pop_heap(TopkItem *first, TopkItem *last, TopkItem *result) {
    TopkItem value = *result;
    *result = *first;
    topk_adjust_heap(first, 0, last - first, value);
}
TOPK_FN void topk_heap_select(TopkItem *first, TopkItem *middle, TopkItem *last) {
    topk_make_heap(first, middle);
    for (TopkItem *i = middle; i < last; i++)
        if (topk_before(*i, *first)) topk_pop_heap(first, middle, i);
}
TOPK_FN void topk_partial_sort(TopkItem *first, TopkItem *middle, TopkItem *last) {
    topk_heap_select(first, middle, last);
    while (middle - first > 1) middle--, topk_pop_heap(first, middle, middle);  // sort_heap
}
TOPK_FN void topk_nth_element(TopkItem *first, TopkItem *nth, TopkItem *last) {
    if (first == last || nth == last) return;
    int depth = 2 * topk_log2((int)(last - first));
    while (last - first > 3) {
        if (depth == 0) {
            topk_heap_select(first, nth + 1, last);
            topk_swap(first, nth);
            return;
        }
        depth--;
        TopkItem *cut = topk_partition_pivot(first, last);
        if (cut <= nth) first = cut;
        else last = cut;
    }
    topk_insertion_sort(first, last);
}
// std::sort: introsort down to runs of 16, then one insertion sort (unguarded past the first 16). Recursion is
// replaced by an explicit stack of the right-hand parts.
TOPK_FN void topk_sort(TopkItem *first, TopkItem *last) {
    if (first == last) return;
    TopkItem *stack_lo[64], *stack_hi[64];
    int depth_stack[64], sp = 0;
    stack_lo[sp] = first, stack_hi[sp] = last, depth_stack[sp] = 2 * topk_log2((int)(last - first)), sp++;
    while (sp > 0) {
        sp--;
        TopkItem *lo = stack_lo[sp], *hi = stack_hi[sp];
        int depth = depth_stack[sp];
        while (hi - lo > 16) {
            if (depth == 0) {
                topk_partial_sort(lo, hi, hi);
                break;
            }
            depth--;
            TopkItem *cut = topk_partition_pivot(lo, hi);
            stack_lo[sp] = cut, stack_hi[sp] = hi, depth_stack[sp] = depth, sp++;  // the right part, then the left
            hi = cut;
        }
    }
    TopkItem *guarded_end = last - first > 16 ? first + 16 : last;  // past the first 16 the insertion is unguarded
    topk_insertion_sort(first, guarded_end);
    for (TopkItem *i = guarded_end; i != last; i++) topk_linear_insert(i);
}

// buf [n] is filled with (x[i], i) and left with torch.topk(x, k)'s pairs in its first k slots (sorted=True).
TOPK_FN void topk_torch_order(TopkItem *buf, const float *x, int n, int k) {
    for (int i = 0; i < n; i++) buf[i].v = x[i], buf[i].i = i;
    if ((long)k * 64 <= n) {
        topk_partial_sort(buf, buf + k, buf + n);
    } else {
        topk_nth_element(buf, buf + k - 1, buf + n);
        topk_sort(buf, buf + k - 1);
    }
}
