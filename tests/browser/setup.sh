# tests/browser/setup.sh: sourced (after tests/lib.sh) by the tests that open the page in a browser
# (test_page_explorer.sh, test_diagram.sh). browser_ready makes sure they can run on a fresh Debian 12:
#   - the Debian packages chromium and npm (installed with apt-get when missing and run as root, else one FAIL line
#     naming the command to run),
#   - puppeteer-core at the version pinned in tests/browser/package.json, installed by `npm ci` from
#     package-lock.json into tests/browser/node_modules (it downloads no browser: the scripts launch the system's
#     chromium, CHROMIUM overrides /usr/bin/chromium),
# and exports CHROMIUM. Returns non-zero (after counting one failure with `no`) when any of it cannot be had.
browser_ready() {
    local missing=()
    command -v "${CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
    command -v npm >/dev/null || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "installing: ${missing[*]}"
            (apt-get install -y -q "${missing[@]}" || (apt-get update -q && apt-get install -y -q "${missing[@]}")) \
                >"$TMP/apt.log" 2>&1 || { no "apt-get install ${missing[*]} failed: $(tail -n 3 "$TMP/apt.log")"; return 1; }
        else
            no "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"; return 1
        fi
    fi
    export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
    local want have
    want=$($PY -c 'import json; print(json.load(open("tests/browser/package.json"))["dependencies"]["puppeteer-core"])')
    have=$($PY -c 'import json; print(json.load(open("tests/browser/node_modules/puppeteer-core/package.json"))["version"])' 2>/dev/null)
    if [ "$have" != "$want" ]; then
        echo "npm ci: puppeteer-core $want (tests/browser/package-lock.json)"
        (cd tests/browser && timeout 600 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1 \
            || { no "npm ci in tests/browser failed: $(tail -n 5 "$TMP/npm.log")"; return 1; }
    fi
}
