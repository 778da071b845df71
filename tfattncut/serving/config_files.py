"""The text-proto files that tensorflow_model_server reads, read the same way here:
--model_config_file (ModelServerConfig), --batching_parameters_file (BatchingParameters) and
--ssl_config_file (SSLConfig). Each error names the file and the field to fix.
"""
import dataclasses
import os
import re

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from tensorflow_serving.config import model_server_config_pb2

from tfattncut.serving.export import BatchingOptions


def _read(flag, path):
    """The text of the file that --FLAG names; an error naming the flag if it can't be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as error:
        raise type(error)(f"--{flag}={path}: {error.strerror}") from None


def read_model_config_file(path):
    """{name: base_path} of a model_config_list text proto (`--model_config_file`).

    Base paths as the container sees them (`/models/NAME`, written by the export) are looked
    up beside the config file when they do not exist here.
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(_read("model_config_file", path), config)
    except text_format.ParseError as error:
        raise ValueError(f"--model_config_file={path}: not a ModelServerConfig text "
                         f"proto: {error}") from None
    models = {}
    for entry in config.model_config_list.config:
        base_path = entry.base_path
        if not os.path.isdir(base_path):
            beside = os.path.join(os.path.dirname(os.path.abspath(path)),
                                  os.path.basename(base_path.rstrip("/")))
            base_path = beside if os.path.isdir(beside) else base_path
        models[entry.name] = base_path
    if not models:
        raise ValueError(f"--model_config_file={path} lists no model (model_config_list "
                         "{ config { name: ... base_path: ... } })")
    return models


def read_batching_parameters(path):
    """BatchingOptions from a `--batching_parameters_file` (`NAME { value: N }` lines)."""
    names = {field.name for field in dataclasses.fields(BatchingOptions)}
    values = {}
    text = re.sub(r"#.*", "", _read("batching_parameters_file", path))
    for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", text):
        if name not in names:
            raise ValueError(f"--batching_parameters_file={path}: {name} is not supported; "
                             f"use {sorted(names)}")
        values[name] = int(value)
    return BatchingOptions(**values)



def _ssl_config_class():
    """tensorflow.serving.SSLConfig (tensorflow_serving/config/ssl_config.proto), which the
    tensorflow-serving-api package does not ship, built from its four fields."""
    file = descriptor_pb2.FileDescriptorProto(
        name="tfattncut/serving/ssl_config.proto", package="tensorflow.serving",
        syntax="proto3")
    message = file.message_type.add(name="SSLConfig")
    field = descriptor_pb2.FieldDescriptorProto
    for number, (name, kind) in enumerate([("server_key", field.TYPE_STRING),
                                           ("server_cert", field.TYPE_STRING),
                                           ("custom_ca", field.TYPE_STRING),
                                           ("client_verify", field.TYPE_BOOL)], start=1):
        message.field.add(name=name, number=number, type=kind, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


SSLConfig = _ssl_config_class()


def read_ssl_config_file(path):
    """gRPC server credentials from an `--ssl_config_file`: an SSLConfig text proto whose
    server_key, server_cert and custom_ca hold PEM text (not file names), as
    tensorflow_model_server reads it; client_verify demands client certificates signed by
    custom_ca (mutual TLS)."""
    config = SSLConfig()
    try:
        text_format.Parse(_read("ssl_config_file", path), config)
    except text_format.ParseError as error:  # its text would quote the private key
        raise ValueError(f"--ssl_config_file={path}: not an SSLConfig text proto "
                         f"(server_key, server_cert, custom_ca, client_verify): parse "
                         f"error at line {error.GetLine()}, column {error.GetColumn()}"
                         ) from None
    for name in ("server_key", "server_cert", "custom_ca"):
        value = getattr(config, name)
        if (value or name != "custom_ca") and "-----BEGIN " not in value:
            raise ValueError(f"--ssl_config_file={path}: {name} must hold the PEM text itself "
                             "(-----BEGIN ...), not a file name, as in TF Serving")
    if config.client_verify and not config.custom_ca:
        raise ValueError(f"--ssl_config_file={path}: client_verify needs custom_ca, the CA "
                         "that signs the client certificates")
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify)
