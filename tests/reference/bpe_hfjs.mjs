// bpe_hfjs.mjs: an optional second opinion for the byte-level BPE of common/tokenizer/tokenizer_bpe.c: Hugging Face's
// own JavaScript port of `tokenizers` (npm @huggingface/tokenizers, pure JS), not installed by `make test`.
//
//   npm install --prefix /tmp/hfjs @huggingface/tokenizers@0.2.0
//   NODE_PATH=/tmp/hfjs/node_modules node tests/reference/bpe_hfjs.mjs DIR TEXTS.jsonl IDS.txt
// DIR holds tokenizer.json (and tokenizer_config.json if any); one line of ids per JSON string of TEXTS.jsonl, with
// no BOS/EOS (add_special_tokens false), the same as `wt-tokenize --tokenizer DIR/tokenizer.json --jsonl`.
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const require = createRequire(import.meta.url);
const { Tokenizer } = require(require.resolve("@huggingface/tokenizers", { paths: (process.env.NODE_PATH || "").split(":") }));
const [dir, textsPath, idsPath] = process.argv.slice(2);
const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const cfgPath = path.join(dir, "tokenizer_config.json");
const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(json, cfg);
const lines = fs.readFileSync(textsPath, "utf8").split("\n").filter((l) => l.length);
const out = lines.map((l) => tok.encode(JSON.parse(l), { add_special_tokens: false }).ids.join(" "));
fs.writeFileSync(idsPath, out.join("\n") + "\n");
