"""The functions the example flows run by compute. Register them once on the site's store:

    python examples/flows/functions.py          # prints their function ids

They read and write through :func:`faas.flows.actions.files.open_url`, so the same function
works on a folder (``file://``) and on a bucket (``s3://``); the endpoint needs faas (and, for
the thumbnails, Pillow).
"""


def make_thumbnails(src_url, dst_url, size=128):
    """A thumbnail (at most size x size pixels) of every image under src_url, written under
    dst_url with the same relative path; returns {"thumbnails": [...], "skipped": [...]}."""
    import posixpath
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    from faas.flows.actions.files import open_url

    src, src_path = open_url(src_url)
    dst, dst_path = open_url(dst_url)
    made, skipped = [], []
    for rel, _ in sorted(src.walk(src_path)):
        try:
            img = Image.open(BytesIO(src.read_bytes(posixpath.join(src_path, rel))))
            img.thumbnail((size, size))
        except (UnidentifiedImageError, OSError):
            skipped.append(rel)
            continue
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGBA")
            fmt, ext = "png", ".png"
        else:
            fmt, ext = "jpeg", ".jpg"
        out = BytesIO()
        img.save(out, format=fmt)
        out.seek(0)
        name = posixpath.splitext(rel)[0] + ".thumb" + ext
        dst.write(posixpath.join(dst_path, name), out)
        made.append(name)
    return {"thumbnails": made, "skipped": skipped}


def simple_tar(src_dir, dest_path, gcs_base_path):
    """The talk's ``simple_tar``: a .tar.gz of the folder src_dir (a path under gcs_base_path, the
    base URL of the collection the endpoint shares, as the talk's GCS base path) written to
    dest_path under the same base. Returns dest_path, the path a transfer takes next."""
    import posixpath
    import tarfile
    import tempfile

    from faas.flows.actions.files import join, open_url

    src, src_path = open_url(join(gcs_base_path, src_dir))
    out, out_path = open_url(join(gcs_base_path, dest_path))
    top = posixpath.basename(src_path.rstrip("/"))
    with tempfile.TemporaryFile() as tmp:
        with tarfile.open(fileobj=tmp, mode="w:gz") as tar:
            for rel, size in sorted(src.walk(src_path)):
                info = tarfile.TarInfo(posixpath.join(top, rel))
                info.size = size
                with src.reader(posixpath.join(src_path, rel)) as f:
                    tar.addfile(info, f)
        tmp.seek(0)
        out.write(out_path, tmp)
    return dest_path


if __name__ == "__main__":
    import faas

    c = faas.client()
    for fn in (make_thumbnails, simple_tar):
        print(f"{fn.__name__}: {c.register_function(fn)}")
    c.close()
