"""tfattncut.serving.config_files: tensorflow_model_server's text-proto files, and errors that
name the file and field."""
import os
import tempfile

import grpc
import tensorflow as tf

from tests.serving.servingdata import make_certificates, write_ssl_config
from tfattncut.serving import config_files
from tfattncut.serving.export import BatchingOptions


def _models_config(text):
    """(root, ROOT/models.config holding `text`), with a model folder ROOT/tiny beside it."""
    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "tiny"))
    path = os.path.join(root, "models.config")
    with open(path, "w") as f:
        f.write(text)
    return root, path


class ConfigFilesTest(tf.test.TestCase):

    def test_model_config_and_batching_files(self):
        root, path = _models_config('model_config_list { config { name: "tiny" base_path: '
                                    '"/models/tiny" model_platform: "tensorflow" } }')
        self.assertEqual(config_files.read_model_config_file(path),
                         {"tiny": os.path.join(root, "tiny")})
        with open(path, "w") as f:
            f.write("model_config_list { config { nme: 'x' } }")
        with self.assertRaisesRegex(ValueError, "not a ModelServerConfig"):
            config_files.read_model_config_file(path)
        batching = os.path.join(root, "batching.config")
        with open(batching, "w") as f:
            f.write(BatchingOptions(max_batch_size=4).to_text() + "# tuned\n")
        self.assertEqual(config_files.read_batching_parameters(batching),
                         BatchingOptions(max_batch_size=4))
        with open(batching, "w") as f:
            f.write("max_batch_size { value: 4 }\nthread_pool_name { value: 1 }\n")
        with self.assertRaisesRegex(ValueError, 'no field named "thread_pool_name"'):
            config_files.read_batching_parameters(batching)

    def test_a_model_whose_base_path_is_nowhere_is_refused(self):
        root, path = _models_config('model_config_list { config { name: "tiny" base_path: '
                                    '"/models/tiny" } config { name: "m" base_path: '
                                    '"/nonexistent/m" } }')
        with self.assertRaisesRegex(ValueError, f"^--model_config_file={path}: model 'm': "
                                    "base_path '/nonexistent/m' is not a folder, nor is "
                                    f"{os.path.join(root, 'm')} beside the config file$"):
            config_files.read_model_config_file(path)
        with open(path, "w") as f:
            f.write('model_config_list { config { name: "tiny" base_path: "/models/tiny" } '
                    f'config {{ name: "tiny" base_path: "{root}/tiny" }} }}')
        with self.assertRaisesRegex(ValueError, "lists model 'tiny' twice"):
            config_files.read_model_config_file(path)

    def test_batching_file_reads_every_field_and_refuses_what_tf_serving_would(self):
        path = os.path.join(tempfile.mkdtemp(), "batching.config")
        # No field at its default: each must be read, not defaulted.
        every_field = BatchingOptions(max_batch_size=1, batch_timeout_micros=0,
                                      max_enqueued_batches=1, num_batch_threads=1)
        cases = [
            (every_field.to_text(), every_field),
            ("max_batch_size: { value: 8 }  # TF Serving's text format allows the colon\n",
             BatchingOptions(max_batch_size=8)),
            ("max_batch_size { value: 0 }", "max_batch_size must be >= 1; got 0$"),
            ("max_batch_size { value: -8 }", "max_batch_size must be >= 1; got -8$"),
            ("max_batch_size { }", "max_batch_size must be >= 1; got 0$"),
            ("batch_timeout_micros { value: -1 }",
             r"batch_timeout_micros must be in \[0, \d+\]; got -1$"),
            ("max_enqueued_batches { value: 0 }", "max_enqueued_batches must be >= 1; got 0$"),
            ("num_batch_threads { value: 0 }", "num_batch_threads must be >= 1; got 0$"),
            ("max_batch_size { value: 4 }\nbatch_timeout_micros: 5000\n",
             "each as NAME { value: N }: 2:23 : 'batch_timeout_micros: 5000'"),
            ("max_batch_size { value: 4 } max_batch_size { value: 8 }",
             'multiple "max_batch_size" fields'),
        ]
        for text, want in cases:
            with self.subTest(text):
                with open(path, "w") as f:
                    f.write(text)
                if isinstance(want, BatchingOptions):
                    self.assertEqual(config_files.read_batching_parameters(path), want)
                else:
                    with self.assertRaisesRegex(ValueError,
                                                f"^--batching_parameters_file={path}: .*{want}"):
                        config_files.read_batching_parameters(path)

    def test_a_file_that_cannot_be_read_is_named_with_its_flag(self):
        missing = os.path.join(tempfile.mkdtemp(), "missing.config")
        for read, flag in ((config_files.read_model_config_file, "model_config_file"),
                           (config_files.read_batching_parameters, "batching_parameters_file"),
                           (config_files.read_ssl_config_file, "ssl_config_file")):
            with self.assertRaisesRegex(FileNotFoundError,
                                        f"^--{flag}={missing}: No such file or directory$"):
                read(missing)

    def test_ssl_config_file(self):
        root = tempfile.mkdtemp()
        pems = make_certificates(root)
        path = os.path.join(root, "ssl.config")
        for client_verify in (False, True):
            credentials = config_files.read_ssl_config_file(
                write_ssl_config(path, pems, client_verify))
            self.assertIsInstance(credentials, grpc.ServerCredentials)
        write_ssl_config(path, pems, client_verify=True)
        with open(path) as f:
            without_ca = "".join(line for line in f if not line.startswith("custom_ca"))
        cases = [
            ('server_key: "/etc/ssl/server.key"\nserver_cert: "x"\n',
             "server_key must hold the PEM text itself"),
            (without_ca, "client_verify needs custom_ca"),
            ("server_key: 'x'\nserver_certificate: 'y'\n",
             "not an SSLConfig text proto .* line 2, column 1"),
        ]
        for text, pattern in cases:
            with self.subTest(pattern):
                with open(path, "w") as f:
                    f.write(text)
                with self.assertRaisesRegex(ValueError, f"--ssl_config_file={path}: {pattern}"):
                    config_files.read_ssl_config_file(path)
        with open(path, "w") as f:
            f.write(without_ca.replace("server_key:", "server_key {"))
        with self.assertRaises(ValueError) as raised:
            config_files.read_ssl_config_file(path)
        self.assertNotIn("PRIVATE KEY", str(raised.exception))  # never echo the key

    def test_a_key_that_does_not_match_its_certificate_is_refused(self):
        root = tempfile.mkdtemp()
        pems = make_certificates(root)
        path = os.path.join(root, "ssl.config")
        for name, pem in (("the client's key", dict(pems, server_key=pems["client_key"])),
                          ("a broken certificate", dict(pems, server=pems["server"][:200]))):
            with self.subTest(name):
                write_ssl_config(path, pem, client_verify=False)
                with self.assertRaisesRegex(ValueError, f"^--ssl_config_file={path}: gRPC "
                                            "cannot use server_key with server_cert"):
                    config_files.read_ssl_config_file(path)
