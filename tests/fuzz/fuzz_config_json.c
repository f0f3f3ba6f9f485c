// fuzz_config_json.c: Hugging Face's config.json (common/formats/hf.c): the keys, rope_scaling / rope_parameters, and
// the choice of Meta's multiple_of / ffn_dim_multiplier that reproduces intermediate_size.
//
// Promise of an accepted file: fuzz_check_config() (fuzz.h), and the FFN size equal to intermediate_size.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Config c;
    char err[512];
    if (config_from_hf_json_try(&c, (const char *)data, size, err, sizeof err)) {
        fuzz_check_config(&c);
        FUZZ_REQUIRE(c.ffn_hidden == c.intermediate_size, "F %d vs intermediate_size %d", c.ffn_hidden, c.intermediate_size);
    } else {
        fuzz_check_message(err, sizeof err);
    }
    return 0;
}
