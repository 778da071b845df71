"""The text-proto files that tensorflow_model_server reads, read the same way here:
--model_config_file (ModelServerConfig), --batching_parameters_file (BatchingParameters) and
--ssl_config_file (SSLConfig). Each error names the file and the field to fix.
"""
import concurrent.futures
import os
import threading

import grpc
from google.protobuf import (descriptor_pb2, descriptor_pool, message_factory, text_format,
                             wrappers_pb2)
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
    up beside the config file when they do not exist here. A base path that is in neither
    place is refused, as --model_base_path is: the server would serve nothing.
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(_read("model_config_file", path), config)
    except text_format.ParseError as error:
        raise ValueError(f"--model_config_file={path}: not a ModelServerConfig text "
                         f"proto: {error}") from None
    models = {}
    for entry in config.model_config_list.config:
        if entry.name in models:
            raise ValueError(f"--model_config_file={path} lists model {entry.name!r} twice")
        base_path = entry.base_path
        if not os.path.isdir(base_path):
            beside = os.path.join(os.path.dirname(os.path.abspath(path)),
                                  os.path.basename(base_path.rstrip("/")))
            if not os.path.isdir(beside):
                raise ValueError(f"--model_config_file={path}: model {entry.name!r}: base_path "
                                 f"{base_path!r} is not a folder, nor is {beside} beside the "
                                 "config file")
            base_path = beside
        models[entry.name] = base_path
    if not models:
        raise ValueError(f"--model_config_file={path} lists no model (model_config_list "
                         "{ config { name: ... base_path: ... } })")
    return models


_FIELD = descriptor_pb2.FieldDescriptorProto


def _message_class(name, fields):
    """The protobuf message class tensorflow.serving.NAME with `fields` [(name, type,
    message type or None)] numbered from 1: TF Serving's config messages that the
    tensorflow-serving-api package does not ship, read with the same text format."""
    file = descriptor_pb2.FileDescriptorProto(
        name=f"tfattncut/serving/{name}.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name])
    message = file.message_type.add(name=name)
    for number, (field_name, kind, type_name) in enumerate(fields, start=1):
        message.field.add(name=field_name, number=number, type=kind, type_name=type_name,
                          label=_FIELD.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


# The BatchingParameters fields (tensorflow_serving/servables/tensorflow/
# session_bundle_config.proto) that BatchingOptions honours, all Int64Value, and the range of
# each as TF Serving's batch scheduler checks it: a batch holds at least one request, the
# queue at least one batch, a thread runs them; a timeout waits 0 or more microseconds (up to
# what a Python wait can take).
_BATCHING_RANGES = {"max_batch_size": (1, None),
                    "batch_timeout_micros": (0, int(threading.TIMEOUT_MAX * 1e6)),
                    "max_enqueued_batches": (1, None),
                    "num_batch_threads": (1, None)}
BatchingParameters = _message_class(
    "BatchingParameters", [(name, _FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value")
                           for name in _BATCHING_RANGES])
SSLConfig = _message_class("SSLConfig", [("server_key", _FIELD.TYPE_STRING, None),
                                         ("server_cert", _FIELD.TYPE_STRING, None),
                                         ("custom_ca", _FIELD.TYPE_STRING, None),
                                         ("client_verify", _FIELD.TYPE_BOOL, None)])


def read_batching_parameters(path):
    """BatchingOptions from a `--batching_parameters_file`, a BatchingParameters text proto
    (`NAME { value: N }` lines) of the fields BatchingOptions names; the others default."""
    parameters = BatchingParameters()
    try:
        text_format.Parse(_read("batching_parameters_file", path), parameters)
    except text_format.ParseError as error:
        raise ValueError(f"--batching_parameters_file={path}: not a BatchingParameters text "
                         f"proto of the fields this server honours ({', '.join(_BATCHING_RANGES)}"
                         f"), each as NAME {{ value: N }}: {error}") from None
    values = {}
    for name, (low, high) in _BATCHING_RANGES.items():
        if not parameters.HasField(name):
            continue
        value = getattr(parameters, name).value
        if value < low or (high is not None and value > high):
            within = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"--batching_parameters_file={path}: {name} must be {within}; "
                             f"got {value}")
        values[name] = value
    return BatchingOptions(**values)


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
    credentials = grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify)
    # gRPC reads the PEM text only when it binds a port, and then says no more than "Failed to
    # bind"; a throwaway server on a port the system picks can only fail for the credentials.
    # It is started only to be stopped: gRPC frees a bound port when a started server stops.
    probe = grpc.server(concurrent.futures.ThreadPoolExecutor(1))
    try:
        probe.add_secure_port("127.0.0.1:0", credentials)
    except RuntimeError:
        raise ValueError(f"--ssl_config_file={path}: gRPC cannot use server_key with "
                         "server_cert: the key does not match the certificate, or one of "
                         "server_key, server_cert, custom_ca is not a valid PEM key or "
                         "certificate") from None
    probe.start()
    probe.stop(None).wait()
    return credentials
