"""Thumbnails of a folder of images, made on an endpoint with Pillow.

    python examples/thumbnails.py SRC_DIR DST_DIR [--size 128] [--endpoint NAME]
    python examples/thumbnails.py samples/ thumbs/ --make-samples 12    # no images at hand

The client reads each file and sends its bytes as the argument, so the endpoint needs no access
to the client's files (it can be a cluster far away; only it needs Pillow). The function returns
the thumbnail's bytes and the client writes them to DST_DIR. A file that is not an image fails
on its own, with the remote error reported; the others still succeed. Exit status 1 if any failed.
"""
import argparse
import random
import sys
from concurrent.futures import as_completed
from pathlib import Path

import faas


def make_thumbnail(data, size):
    """Image bytes in; (file extension, thumbnail bytes) out, at most size x size pixels."""
    from io import BytesIO
    from PIL import Image
    img = Image.open(BytesIO(data))
    img.thumbnail((size, size))
    if img.mode in ("RGB", "L"):
        fmt = "jpeg"
    else:                                  # transparency, palettes, ...: keep them in a PNG
        img, fmt = img.convert("RGBA"), "png"
    out = BytesIO()
    img.save(out, format=fmt)
    return ("jpg" if fmt == "jpeg" else fmt), out.getvalue()


def make_samples(folder, n):
    """Write n sample images (JPEG and PNG, assorted sizes) to folder, with Pillow."""
    from PIL import Image, ImageDraw
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)

    def color():
        return tuple(rng.randrange(256) for _ in range(3))

    for i in range(n):
        w, h = rng.randint(200, 1200), rng.randint(200, 900)
        if i % 2:    # every other one a PNG with a transparent background
            img, name = Image.new("RGBA", (w, h)), f"sample_{i:03d}.png"
        else:
            img, name = Image.new("RGB", (w, h), color()), f"sample_{i:03d}.jpg"
        draw = ImageDraw.Draw(img)
        for _ in range(8):
            x, y, r = rng.randrange(w), rng.randrange(h), rng.randint(10, min(w, h) // 3)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color())
        img.save(folder / name)
    print(f"wrote {n} sample images to {folder}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="folder of images")
    p.add_argument("dst", type=Path, help="folder for the thumbnails (created if missing)")
    p.add_argument("--size", type=int, default=128, help="largest side of a thumbnail, in pixels")
    p.add_argument("--endpoint", default=None, help="endpoint name [default: local]")
    p.add_argument("--make-samples", type=int, metavar="N", help="first write N sample images to SRC")
    a = p.parse_args()
    if a.make_samples:
        make_samples(a.src, a.make_samples)
    files = sorted(f for f in a.src.iterdir() if f.is_file() and not f.name.startswith("."))
    a.dst.mkdir(parents=True, exist_ok=True)

    failed = 0
    with faas.Executor(endpoint=a.endpoint) as ex:
        futures = {ex.submit(make_thumbnail, f.read_bytes(), a.size): f for f in files}
        for future in as_completed(futures):
            src = futures[future]
            try:
                ext, data = future.result()
            except Exception as e:
                failed += 1
                print(f"{src.name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            dst = a.dst / f"{src.stem}.{ext}"
            dst.write_bytes(data)
            print(f"{src.name} -> {dst} ({len(data)} bytes)")
    print(f"{len(files) - failed} thumbnail(s) written to {a.dst}, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
