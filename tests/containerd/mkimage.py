#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Write a one-layer OCI image archive (oci-layout, index.json, blobs) for `ctr image import`.

The layer is a root filesystem with busybox-static at /bin/busybox, a symlink per applet the
tests use, and the empty directories a runtime mounts over. Everything is built here from the
host's busybox binary: no registry, no network.

usage: mkimage.py BUSYBOX ARCHIVE IMAGE-NAME GOARCH
"""
import hashlib
import io
import json
import sys
import tarfile

APPLETS = ["sh", "sleep", "dd", "nc", "cat", "ls", "mkdir", "rm", "sync", "true", "ping",
           "head", "seq", "ln", "ip", "ifconfig", "wc", "yes", "timeout"]
DIRS = ["bin", "dev", "etc", "proc", "sys", "tmp", "data", "var", "run"]
MTIME = 1700000000


def tar_bytes(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar)
    return buf.getvalue()


def entry(name, kind, mode, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def main():
    busybox, archive, image, arch = sys.argv[1:5]
    with open(busybox, "rb") as f:
        bb = f.read()

    def rootfs(tar):
        for d in DIRS:
            tar.addfile(entry(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        tar.addfile(entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(bb)), io.BytesIO(bb))
        for a in APPLETS:
            tar.addfile(entry("bin/" + a, tarfile.SYMTYPE, 0o777, linkname="busybox"))
        passwd = b"root:x:0:0:root:/:/bin/sh\n"
        tar.addfile(entry("etc/passwd", tarfile.REGTYPE, 0o644, size=len(passwd)),
                    io.BytesIO(passwd))

    layer = tar_bytes(rootfs)
    blobs = {}

    def blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_digest = blob(layer)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tests/containerd/mkimage.py"}],
    }, sort_keys=True).encode()
    config_digest = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest = blob(manifest)
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": len(manifest),
                       "platform": {"architecture": arch, "os": "linux"},
                       "annotations": {"io.containerd.image.name": image,
                                       "org.opencontainers.image.ref.name": image}}],
    }, sort_keys=True).encode()
    layout = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()

    def archive_tar(tar):
        tar.addfile(entry("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(entry("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for digest, data in blobs.items():
            tar.addfile(entry("blobs/sha256/" + digest[7:], tarfile.REGTYPE, 0o644,
                              size=len(data)), io.BytesIO(data))
        for name, data in (("oci-layout", layout), ("index.json", index)):
            tar.addfile(entry(name, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))

    with open(archive, "wb") as f:
        f.write(tar_bytes(archive_tar))


if __name__ == "__main__":
    main()
