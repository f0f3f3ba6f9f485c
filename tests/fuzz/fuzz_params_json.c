// fuzz_params_json.c: Meta's params.json (common/config.c) and the values derived from it; what an accepted file
// promises is fuzz_check_config() in fuzz.h.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Config c;
    char err[512];
    if (config_from_params_json_try(&c, (const char *)data, size, err, sizeof err)) fuzz_check_config(&c);
    else fuzz_check_message(err, sizeof err);
    return 0;
}
