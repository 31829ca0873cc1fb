#!/usr/bin/env bash
# Opens an audit report the way a seller would, in headless Chromium, and saves a screenshot.
# Fails when the page writes anything to the console (the report has no script, so any message,
# an uncaught error included, means something is wrong) or when the screenshot is blank.
#   infra/check-report.sh REPORT.html OUT.png [HEIGHT]
set -euo pipefail
usage="usage: infra/check-report.sh REPORT.html OUT.png [HEIGHT]"
report=${1:?$usage}
out=${2:?$usage}
height=${3:-4000}
[ -f "$report" ] || { echo "check-report: $report does not exist" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "check-report: chromium is not installed (apt-get install chromium)" >&2; exit 2; }

profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
rm -f "$out"
# Networking is off so a page that tried to fetch anything could not look right by accident.
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars \
  --user-data-dir="$profile" --window-size="1280,$height" --screenshot="$out" \
  --enable-logging=stderr --v=0 "file://$(realpath "$report")" >"$log" 2>&1; then
  cat "$log" >&2
  echo "check-report: chromium failed on $report" >&2
  exit 1
fi
# Chromium logs each console message as `CONSOLE:LINE]` (older builds `CONSOLE(LINE)]`).
if grep -E 'CONSOLE[:(][0-9]+' "$log" >&2; then
  echo "check-report: $report wrote to the browser console (above)" >&2
  exit 1
fi
[ -s "$out" ] || { cat "$log" >&2; echo "check-report: no screenshot was written" >&2; exit 1; }

# Not blank: enough pixels that are not the background, in more than a handful of colours.
python3 - "$out" <<'PY'
import struct, sys, zlib

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit(f"check-report: {path} is not a PNG")
pos, idat = 8, []
while pos < len(data):
    (size,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
    pos += 12 + size
    if kind == b"IHDR":
        width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
if depth != 8 or interlace != 0 or colour_type not in (2, 6):
    sys.exit(f"check-report: {path}: unexpected PNG format (depth {depth}, type {colour_type})")
bpp = 3 if colour_type == 2 else 4
stride = width * bpp
raw = zlib.decompress(b"".join(idat))
prev = bytearray(stride)
inked = 0
colours = set()
for y in range(height):
    start = y * (stride + 1)
    kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    if kind == 1:
        for x in range(bpp, stride):
            row[x] = (row[x] + row[x - bpp]) & 255
    elif kind == 2:
        row = bytearray((a + b) & 255 for a, b in zip(row, prev))
    elif kind == 3:
        for x in range(stride):
            left = row[x - bpp] if x >= bpp else 0
            row[x] = (row[x] + (left + prev[x]) // 2) & 255
    elif kind == 4:
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = row
    for x in range(0, stride, bpp):
        pixel = bytes(row[x:x + 3])
        if pixel != b"\xff\xff\xff":
            inked += 1
            if len(colours) < 64:
                colours.add(pixel)
share = inked / (width * height)
print(f"check-report: {path}: {width}x{height}, {share:.1%} of pixels drawn, "
      f"{len(colours)}{'+' if len(colours) == 64 else ''} colours")
if share < 0.01 or len(colours) < 8:
    sys.exit(f"check-report: {path} looks blank")
PY
