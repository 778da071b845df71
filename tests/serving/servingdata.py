"""Tiny runs, exports and crafted image files that the serving tests share."""
import collections
import os
import struct
import subprocess
import zlib

import keras
import tensorflow as tf

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.serving.export import export

TinyExport = collections.namedtuple("TinyExport", "export_dir path generator run_dir")


def save_tiny_run(root, name="run", seed=0):
    """A run directory of an untrained tiny generator; returns (config, generator).
    Different seeds give different weights."""
    config = tiny_config(root, name=name, seed=seed)
    keras.utils.set_random_seed(seed)
    return config, write_tiny_run(config)


def export_tiny_model(root, model_name="tiny", seed=0):
    """Exports a tiny run as ROOT/saved_models/MODEL_NAME/next version."""
    config, generator = save_tiny_run(root, name=f"run{seed}", seed=seed)
    export_dir = os.path.join(root, "saved_models")
    return TinyExport(export_dir, export(config.run_dir, model_name, export_dir), generator,
                      config.run_dir)


def save_function_model(path, function, input_signature):
    """A SavedModel at PATH whose only signature, serving_default, is `function` (tensors ->
    {output name: tensor}) with `input_signature` [tf.TensorSpec]; returns PATH."""
    module = tf.Module()
    module.serve = tf.function(function, input_signature=input_signature)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def png_claiming(height, width):
    """A valid ~70-byte PNG whose header declares height x width RGB pixels but whose data
    holds a few bytes: what a decoder would allocate in full before noticing."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def make_certificates(folder):
    """A test CA and the server (127.0.0.1, localhost) and client certificates it signs,
    made by the openssl CLI; returns {name: PEM text} for ca, server, server_key, client,
    client_key."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca_key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=tfattncut test CA")
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        with open(os.path.join(folder, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n")
        openssl("req", *key, "-keyout", f"{name}_key.pem", "-out", f"{name}.csr",
                "-subj", f"/CN=tfattncut test {name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca_key.pem",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext")
    pems = {}
    for name in ("ca", "server", "server_key", "client", "client_key"):
        with open(os.path.join(folder, f"{name}.pem")) as f:
            pems[name] = f.read()
    return pems


def write_ssl_config(path, pems, client_verify):
    """An --ssl_config_file as a user writes it: PEM text in quoted strings, \\n escaped."""
    def quoted(text):
        return '"' + text.replace("\n", "\\n") + '"'

    with open(path, "w") as f:
        f.write(f"server_key: {quoted(pems['server_key'])}\n"
                f"server_cert: {quoted(pems['server'])}\n"
                f"custom_ca: {quoted(pems['ca'])}\n"
                f"client_verify: {'true' if client_verify else 'false'}\n")
    return path
