// pickle.h: a safe reader for the pickle inside a torch checkpoint (data.pkl, formats.md §2.3-2.5).
//
// A pickle is a small stack-machine program. Python runs it, and a GLOBAL such as `os system` followed by REDUCE
// calls that function: loading an untrusted .pth with Python's pickle is running untrusted code. This VM never calls
// anything. It knows the handful of globals that torch.save emits (the allow-list below) and builds plain values
// for them; any other global stops the load with an error naming it.
//
//   allowed: torch._utils._rebuild_tensor_v2   -> a tensor view (storage, offset, shape, stride)
//            torch._utils._rebuild_parameter   -> the tensor inside an nn.Parameter
//            torch.<X>Storage                  -> the dtype of a storage (FloatStorage f32, BFloat16Storage bf16, ...)
//            collections.OrderedDict           -> a dict
//
// Opcodes of protocols 2 and 4 as torch writes them; caps on stack depth, memo size, string length and tensor rank.
// The result of a checkpoint is a dict name -> tensor; a dict holding "model" or "state_dict" is looked into.
//
// Use:
//   PickleTensorList list; char err[256];
//   if (!pickle_read_tensors(bytes, n, &list, err, sizeof err)) input_error(path, "data.pkl: %s", err);
//   for (int i = 0; i < list.n; i++) ... list.tensors[i].name, .storage_key, .shape ...
//   pickle_tensor_list_free(&list);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

// Limits that a real checkpoint never reaches and a hostile one cannot pass.
#define PICKLE_MAX_STACK (1 << 20)        // values on the stack at once
#define PICKLE_MAX_MEMO (1 << 24)         // memo slots (Meta's 8B pickle uses 2334)
#define PICKLE_MAX_STRING (1 << 20)       // bytes in one string (tensor names are short)

// One tensor as the pickle describes it. The bytes live in the zip entry `<archive>/data/<storage_key>`, which
// holds storage_numel elements of dtype; element [i0, i1, ...] is element storage_offset + sum(i_d * stride[d]).
// The VM has checked that every reachable element is < storage_numel.
typedef struct {
    char *name;
    DType dtype;
    char *storage_key;
    int64_t storage_numel;
    int64_t storage_offset;   // in elements
    int ndim;
    int64_t shape[MAX_DIMS];
    int64_t stride[MAX_DIMS]; // in elements
} PickleTensor;

typedef struct {
    int n;
    PickleTensor *tensors;    // in the pickle's order
} PickleTensorList;

// Runs the safe VM on a checkpoint pickle and lists its tensors. Returns false with a one-line message in err
// (which names the byte offset and the opcode, or the forbidden global) on any problem; then nothing is to be freed.
bool pickle_read_tensors(const uint8_t *data, size_t len, PickleTensorList *out, char *err, size_t errlen);
void pickle_tensor_list_free(PickleTensorList *list);

// Runs the same VM on any pickle and writes the resulting value as Python-like text into out, e.g.
// {'a': (1, 2.5, None, True)} ; storages and tensors print as <storage ...> and <tensor ...>. For tests and
// debugging. Returns false with a message in err on any problem.
bool pickle_to_text(const uint8_t *data, size_t len, char *out, size_t outlen, char *err, size_t errlen);
