#!/usr/bin/env bash
# readme_settings.sh -- keep the settings tables of docs/settings.md equal to --help.
#
#   readme_settings.sh --check BINDIR    exit 1 with a diff if they differ
#   readme_settings.sh --update BINDIR   rewrite them from the programs
#
# (The name is from when the tables were in the README; ctest runs it as
# readme_settings.)  Each table stands between "<!-- settings: PROGRAM -->" and
# "<!-- /settings -->" and is what `PROGRAM --help-markdown` prints
# ("<!-- settings: PROGRAM SUBCOMMAND -->" for `PROGRAM SUBCOMMAND --help-markdown`).
set -euo pipefail
mode=${1:-}; bindir=${2:-}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
doc=$root/docs/settings.md
[[ ($mode == --check || $mode == --update) && -d $bindir ]] ||
    { echo "usage: readme_settings.sh --check|--update BINDIR" >&2; exit 2; }

render() {
    local line prog sub
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ ^\<!--\ settings:\ ([a-z-]+)(\ [a-z-]+)?\ --\>$ ]]; then
            prog=${BASH_REMATCH[1]}
            sub=(${BASH_REMATCH[2]})
            "$bindir/${prog#imgfeed-}/$prog" "${sub[@]}" --help-markdown
            while IFS= read -r line && [[ $line != '<!-- /settings -->' ]]; do :; done
            printf '%s\n' "$line"
        fi
    done <"$doc"
}

new=$(render)
if [[ $mode == --update ]]; then
    printf '%s\n' "$new" >"$doc"
elif ! diff -u "$doc" <(printf '%s\n' "$new"); then
    echo "docs/settings.md differs from --help: run bash tests/lib/readme_settings.sh --update BUILD_DIR" >&2
    exit 1
fi
