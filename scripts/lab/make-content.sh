#!/usr/bin/env bash
# make-content.sh DIR — the pages and files nginx serves in the namespace lab.
#
#   DIR/www/index.html        the ~1.5 KB home page (copied from scripts/lab/index.html)
#   DIR/www/gzip/index.html   ~20 KB of numbered text lines (nginx gzips it, chunked)
#   DIR/www/files/{1M,16M,64M}.bin
#                             deterministic bytes: AES-128-CTR keystream under a fixed key
#                             and IV, so every machine makes the same files (each is a
#                             prefix of the next)
#   DIR/cdn/index.html        the page of cdn.example.test
#   DIR/files.sha256          sha256sum lines for every file above, relative to DIR
#                             (`cd DIR && sha256sum -c files.sha256`); the URL path of
#                             www/X is /X
#
# Existing files are kept (the content is deterministic, so they are the same anyway).
set -euo pipefail

dir=${1:?usage: make-content.sh DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
umask 022
mkdir -p "$dir/www/files" "$dir/www/gzip" "$dir/cdn"

step() { printf '  [content] %s\n' "$*"; }

# Fixed key and IV: the point is reproducibility, not secrecy.
readonly KEY=000102030405060708090a0b0c0d0e0f
readonly IV=f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff

keystream() { # BYTES
    head -c "$1" /dev/zero |
        openssl enc -aes-128-ctr -K "$KEY" -iv "$IV" -nosalt
}

cp "$here/index.html" "$dir/www/index.html"

for size in 1 16 64; do
    file=$dir/www/files/${size}M.bin
    if [[ ! -s $file || $(stat -c %s "$file") -ne $((size * 1048576)) ]]; then
        step "www/files/${size}M.bin (${size} MiB of AES-CTR keystream)"
        keystream $((size * 1048576)) > "$file.tmp"
        mv "$file.tmp" "$file"
    fi
done

gzip_page=$dir/www/gzip/index.html
if [[ ! -s $gzip_page ]]; then
    step "www/gzip/index.html (~20 KB of text)"
    {
        printf '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        printf '<title>fetchscope lab: gzip</title></head>\n<body>\n<pre>\n'
        for i in $(seq 1 300); do
            printf 'line %03d: the quick brown fox jumps over the lazy dog, %d times.\n' "$i" "$i"
        done
        printf '</pre>\n</body>\n</html>\n'
    } > "$gzip_page"
fi

cat > "$dir/cdn/index.html" <<'HTML'
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>fetchscope lab: cdn.example.test</title></head>
<body><h1>cdn.example.test</h1><p>You followed a redirect to another host.</p></body>
</html>
HTML

step "files.sha256"
(
    cd "$dir"
    sha256sum www/index.html www/gzip/index.html www/files/1M.bin www/files/16M.bin \
        www/files/64M.bin cdn/index.html
) > "$dir/files.sha256"
