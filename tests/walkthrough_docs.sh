#!/bin/sh
# tests/walkthrough_docs.sh - keeps docs/walkthrough.md true: every block
# of program output in it must be exactly what build/walkthrough prints
# today, and every link to a source line must point at the function it
# names.
#
#   sh tests/walkthrough_docs.sh [BIN]            check (BIN: build/walkthrough)
#   sh tests/walkthrough_docs.sh --update [BIN]   rewrite the blocks and links
#                                                 (and docs/walkthrough_lstm.svg)
#
# An output block is the fenced block right after a marker line; its first
# line is the command, the rest is what the command printed:
#
#   <!-- walkthrough: expr -->
#   ```console
#   $ build/walkthrough expr
#   == expr: ...
#   ```
#
# A source link is written [`name`](../dir/file.c#L123) and must point at
# the line where the function name is defined. On a mismatch the check
# prints a diff (or the right line) and exits non-zero; --update rewrites
# the document instead (review the change with git diff).
set -u
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
BIN=${1:-build/walkthrough}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
cd "$(dirname "$0")/.." || exit 1
DOC=docs/walkthrough.md
[ -x "$BIN" ] || { echo "walkthrough_docs: no executable $BIN (build it with make)"; exit 1; }
[ -f "$DOC" ] || { echo "walkthrough_docs: no $DOC"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/walkthrough_docs.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

# ---- the output blocks -------------------------------------------------
# Writes $TMP/N.args (the marker's arguments), N.cmd (the block's first
# line) and N.doc (the rest) for the N-th marked block; prints N.
awk -v dir="$TMP" '
    function fail(msg) { print "walkthrough_docs: " FILENAME ":" NR ": " msg > "/dev/stderr"; bad = 1; exit 1 }
    state == 0 && /^<!-- walkthrough: .* -->$/ {
        n++; a = $0; sub(/^<!-- walkthrough: /, "", a); sub(/ -->$/, "", a)
        print a > (dir "/" n ".args"); close(dir "/" n ".args")
        printf "" > (dir "/" n ".doc"); state = 1; next
    }
    state == 1 { if ($0 !~ /^```/) fail("the marker must be followed by a ``` line"); state = 2; next }
    state == 2 { print > (dir "/" n ".cmd"); close(dir "/" n ".cmd"); state = /^```$/ ? 0 : 3; next }
    state == 3 && /^```$/ { close(dir "/" n ".doc"); state = 0; next }
    state == 3 { print >> (dir "/" n ".doc"); next }
    END { if (!bad && state != 0) fail("unterminated block"); if (!bad) print n + 0 }
' "$DOC" > "$TMP/count" || exit 1
blocks=$(cat "$TMP/count")
[ "$blocks" -gt 0 ] || { echo "walkthrough_docs: no <!-- walkthrough: ... --> blocks in $DOC"; exit 1; }

failures=0
i=1
while [ "$i" -le "$blocks" ]; do
    args=$(cat "$TMP/$i.args")
    # shellcheck disable=SC2086  # the arguments are words on purpose
    if ! "$BIN" $args > "$TMP/$i.out" 2> "$TMP/$i.err"; then
        echo "FAIL: build/walkthrough $args exited with an error:"; cat "$TMP/$i.err"
        failures=$((failures + 1))
    elif [ $update = 0 ]; then
        if [ "$(cat "$TMP/$i.cmd")" != "\$ build/walkthrough $args" ]; then
            echo "FAIL: the block of <!-- walkthrough: $args --> starts with"
            echo "  $(cat "$TMP/$i.cmd")   instead of   \$ build/walkthrough $args"
            failures=$((failures + 1))
        fi
        if ! diff -u --label "$DOC (walkthrough $args)" --label "what build/walkthrough $args prints" \
                "$TMP/$i.doc" "$TMP/$i.out"; then
            failures=$((failures + 1))
        fi
    fi
    i=$((i + 1))
done

if [ $update = 1 ] && [ $failures = 0 ]; then
    awk -v dir="$TMP" '
        state == 0 && /^<!-- walkthrough: .* -->$/ {
            n++; a = $0; sub(/^<!-- walkthrough: /, "", a); sub(/ -->$/, "", a)
            print; state = 1; next
        }
        state == 1 { print "```console"; print "$ build/walkthrough " a
                     f = dir "/" n ".out"
                     while ((getline line < f) > 0) print line
                     close(f); state = 2; next }
        state == 2 { if ($0 ~ /^```$/) { print; state = 0 }; next }
        { print }
    ' "$DOC" > "$TMP/doc.md" && cp "$TMP/doc.md" "$DOC"
    # and the picture of section 2, when Graphviz is installed
    if command -v dot > /dev/null 2>&1 && "$BIN" bptt --dot "$TMP/lstm.dot" > /dev/null; then
        dot -Grankdir=TB -Tsvg "$TMP/lstm.dot" -o docs/walkthrough_lstm.svg
    fi
fi

# ---- the source links ----------------------------------------------------
# the line where function name is defined in file (a line at column 0
# that declares name( and does not end with ';', or #define name( for a
# macro)
def_line() {
    grep -n -e "^[A-Za-z].*[ *]$1(" -e "^#define $1(" "$2" 2>/dev/null |
        grep -v ';$' | head -n 1 | cut -d: -f1
}
grep -o '\[`[A-Za-z_][A-Za-z_0-9]*`\](\.\./[^)#]*#L[0-9]*)' "$DOC" | sort -u > "$TMP/links"
while IFS= read -r link; do
    name=$(printf '%s\n' "$link" | sed 's/^\[`\([^`]*\)`\].*/\1/')
    file=$(printf '%s\n' "$link" | sed 's/^[^(]*(\.\.\/\([^#]*\)#L.*/\1/')
    line=$(printf '%s\n' "$link" | sed 's/.*#L\([0-9]*\))$/\1/')
    want=$(def_line "$name" "$file")
    if [ -z "$want" ]; then
        echo "FAIL: $DOC links to $name in $file, which does not define it"
        failures=$((failures + 1))
    elif [ "$want" != "$line" ]; then
        if [ $update = 1 ]; then
            sed "s|\[\`$name\`\](\.\./$file#L$line)|[\`$name\`](../$file#L$want)|g" \
                "$DOC" > "$TMP/doc.md" && cp "$TMP/doc.md" "$DOC"
        else
            echo "FAIL: $DOC links $name to $file line $line; it is defined at line $want"
            failures=$((failures + 1))
        fi
    fi
done < "$TMP/links"

# ---- the README's layout -------------------------------------------------
# "How it is organised" has one row per directory of code: every directory
# holding .c or .h files (at most two levels down) has its row, and every
# row names a directory that exists.
dirs=$(git ls-files 2>/dev/null | grep -E '\.(c|h)$' | grep -v '^fuzz/' |
       sed -n 's|^\([^/]*/\([^/]*/\)\{0,1\}\)[^/]*$|\1|p' | sort -u)
[ -n "$dirs" ] || dirs=$(find tensor autograd ops nn examples tests -name '*.[ch]' |
       sed -n 's|^\([^/]*/\([^/]*/\)\{0,1\}\)[^/]*$|\1|p' | sort -u)
for d in $dirs; do
    case $d in tests/*/|examples/*/) continue ;; esac # (their parent's row)
    if ! grep -q "^| \`$d\` |" README.md; then
        echo "FAIL: README.md's layout table has no row for $d"
        failures=$((failures + 1))
    fi
done
for d in $(sed -n 's/^| `\([a-z_/]*\/\)` |.*/\1/p' README.md); do
    if [ ! -d "$d" ]; then
        echo "FAIL: README.md's layout table names $d, which does not exist"
        failures=$((failures + 1))
    fi
done

if [ $failures != 0 ]; then
    echo "walkthrough_docs: $failures mismatch(es); if the program's new output is right,"
    echo "    sh tests/walkthrough_docs.sh --update   rewrites $DOC (review it with git diff)"
    exit 1
fi
if [ $update = 1 ]; then
    echo "walkthrough_docs: $DOC updated ($blocks output blocks, $(wc -l < "$TMP/links") source links)"
else
    echo "walkthrough_docs: $blocks output blocks and $(wc -l < "$TMP/links") source links match"
fi
