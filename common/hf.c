// hf.c: placeholder until the HF reader lands (see hf.h).
#include "hf.h"

void checkpoint_open_hf(Checkpoint *ck, const char *dir) { (void)ck; input_error(dir, "HF checkpoints are not supported yet"); }
void checkpoint_open_safetensors_file(Checkpoint *ck, const char *path) { (void)ck; input_error(path, "safetensors files are not supported yet"); }
