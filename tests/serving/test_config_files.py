"""tfattncut.serving.config_files: tensorflow_model_server's text-proto files, and errors that
name the file and field."""
import os
import tempfile

import grpc
import tensorflow as tf

from tests.serving.servingdata import make_certificates, write_ssl_config
from tfattncut.serving import config_files
from tfattncut.serving.export import BatchingOptions


class ConfigFilesTest(tf.test.TestCase):

    def test_model_config_and_batching_files(self):
        root = tempfile.mkdtemp()
        os.makedirs(os.path.join(root, "tiny"))
        path = os.path.join(root, "models.config")
        with open(path, "w") as f:
            f.write('model_config_list { config { name: "tiny" base_path: "/models/tiny" '
                    'model_platform: "tensorflow" } }')
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
        with self.assertRaisesRegex(ValueError, "thread_pool_name is not supported"):
            config_files.read_batching_parameters(batching)

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
