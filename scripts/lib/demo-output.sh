# Output helpers of scripts/demo.sh (sourced; tested by tests/tests/demo_output.rs).

# Bold headings only on a terminal and without NO_COLOR (no-color.org): `demo.sh > demo.log`
# gets plain text.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi

# Copy stdin to stderr line by line and print only its last line on stdout (for `out=$(...)`).
# Writing through the inherited descriptor matters: `tee /dev/stderr` re-opens the file behind
# stderr with O_TRUNC, which wiped `demo.sh > demo.log 2>&1` and left NUL bytes in it.
mirror_last_line() {
    local line last=""
    while IFS= read -r line || [ -n "$line" ]; do
        printf '%s\n' "$line" >&2
        last="$line"
    done
    printf '%s\n' "$last"
}
