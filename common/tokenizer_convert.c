// tokenizer_convert.c: placeholder until the tokenizer converter lands (see tokenizer_convert.h).
#include "tokenizer_convert.h"

#include "util.h"

void tokenizer_json_to_model(const char *json_path, const char *out_path) {
    (void)out_path;
    input_error(json_path, "tokenizer.json conversion is not implemented yet");
}
