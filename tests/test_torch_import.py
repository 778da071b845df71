"""tfattncut.torch_import on a committed fixture (a reference CUT generator at ngf=2,
6 blocks, saved by torch in both file formats with its output on a fixed input; made by
tests/fixtures/make_torch_fixture.py)."""
import os
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

from tfattncut.inference import load_translator
from tfattncut.methods import METHODS
from tfattncut import torch_import

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
PTH = os.path.join(FIXTURES, "cut_ngf2_6blocks.pth")
LEGACY_PTH = os.path.join(FIXTURES, "cut_ngf2_6blocks_legacy.pth")
# float32 through 29 layers with N(0, 0.5²) weights: torch and TF round differently.
ATOL = 2e-4


def _torch_io():
    """(NHWC input, NHWC torch output) saved with the fixture."""
    io = np.load(os.path.join(FIXTURES, "cut_ngf2_6blocks_io.npz"))
    return io["images"].transpose(0, 2, 3, 1), io["translated"].transpose(0, 2, 3, 1)


def _generator(state):
    config = torch_import.preset_config("cut").replace(**torch_import.generator_options(state))
    generator, _ = METHODS["cut"].build_translator(config, "AtoB")
    return generator


class LoadStateDictTest(tf.test.TestCase):

    def test_zip_and_legacy_files_read_the_same_tensors(self):
        state = torch_import.load_state_dict(PTH)
        legacy = torch_import.load_state_dict(LEGACY_PTH)
        self.assertLen(state, 40)  # 14 convs × (weight, bias) + 4 blur filters + 8 more
        self.assertEqual(sorted(state), sorted(legacy))
        for name, value in state.items():
            self.assertEqual(value.dtype, np.float32)
            # Both files store the same float32 values; reading copies them: exact.
            self.assertAllEqual(value, legacy[name])
        self.assertEqual(state["model.1.weight"].shape, (2, 3, 7, 7))
        self.assertEqual(state["model.12.conv_block.5.weight"].shape, (8, 8, 3, 3))
        self.assertAllClose(state["model.7.filt"][0, 0],
                            np.outer([1, 2, 1], [1, 2, 1]) / 16.0)
        self.assertEqual(torch_import.generator_options(state),
                         {"netG": "resnet_6blocks", "ngf": 2, "no_antialias": False,
                          "no_antialias_up": False})

    def test_refuses_pickles_that_construct_anything_else(self):
        path = os.path.join(tempfile.mkdtemp(), "evil.pth")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00"
                                              b"trueq\x01\x85q\x02Rq\x03.")
        with self.assertRaisesRegex(ValueError, f"^--netG={path}: refusing to load os.system"):
            torch_import.load_state_dict(path)

    def test_a_file_torch_did_not_write_is_named(self):
        folder = tempfile.mkdtemp()
        for name, contents, why in (("notes.pth", b"# text\n", "UnpicklingError"),
                                    ("empty.pth", b"", "EOFError")):
            path = os.path.join(folder, name)
            with open(path, "wb") as f:
                f.write(contents)
            with self.assertRaisesRegex(ValueError, f"^--netG={path} is not a file that "
                                                    f"torch.save.*writes \\({why}"):
                torch_import.load_state_dict(path)


class ImportTest(tf.test.TestCase):

    def test_imported_generator_reproduces_the_torch_output(self):
        images, want = _torch_io()
        generator = _generator(torch_import.load_state_dict(PTH))
        torch_import.assign_generator(generator, torch_import.load_state_dict(PTH))
        got = generator(tf.constant(images)).numpy()
        self.assertGreater(np.abs(want).mean(), 0.1)
        self.assertAllClose(got, want, atol=ATOL)

    def test_run_directory_round_trip_through_load_translator(self):
        out = os.path.join(tempfile.mkdtemp(), "runs", "imported")
        os.makedirs(out)  # an empty folder is as good as a new one
        self.assertEqual(torch_import.import_generator(LEGACY_PTH, "fastcut", out), out)
        translator, config = load_translator(out)
        self.assertEqual((config.ngf, config.netG, config.name), (2, "resnet_6blocks",
                                                                   "imported"))
        self.assertEqual(config.lambda_NCE, 10.0)  # the preset's settings are kept
        images, want = _torch_io()
        self.assertAllClose(translator(tf.constant(images)), want, atol=ATOL)
        with self.assertRaisesRegex(FileExistsError, f"^--out={out} already holds checkpoints"):
            torch_import.import_generator(PTH, "cut", out)

    def test_refuses_an_out_that_holds_files(self):
        out = tempfile.mkdtemp()
        other_run = os.path.join(out, "config.json")
        with open(other_run, "w") as f:
            f.write("{}")
        with self.assertRaisesRegex(FileExistsError, f"^--out={out} already holds config.json; "
                                                     "choose a new or empty folder"):
            torch_import.import_generator(PTH, "cut", out)
        with open(other_run) as f:
            self.assertEqual(f.read(), "{}")
        self.assertEqual(os.listdir(out), ["config.json"])

    def test_refuses_a_preset_whose_translator_is_more_than_the_generator(self):
        out = os.path.join(tempfile.mkdtemp(), "imported")
        with self.assertRaisesRegex(ValueError, "^--preset=uag: its method, uag, translates "
                                                "with AttentionTranslator") as raised:
            torch_import.import_generator(PTH, "uag", out)
        supported = str(raised.exception).rsplit(": ", 1)[1].split(", ")
        # Every preset of the one-sided and two-way methods, built from configs/ and not from
        # a list: uag's attention network and study.cfg's study settings are left out.
        self.assertContainsSubset(["cut", "fastcut", "qsattn_global", "cyclegan", "dclgan",
                                   "simdcl", "demo"], supported)
        self.assertNotIn("uag", supported)
        self.assertNotIn("study", supported)
        self.assertFalse(os.path.exists(out))

    def test_presets_that_are_not_training_flags_name_the_file(self):
        with self.assertRaisesRegex(ValueError, "^--preset=study: configs/study.cfg does not "
                                                "parse as launch.train's flags .*'presets'"):
            torch_import.preset_config("study")
        path = os.path.join(tempfile.mkdtemp(), "typo.cfg")
        with open(path, "w") as f:
            f.write("--flagfile=configs/cut.cfg\n--ngf=abc\n")
        with self.assertRaisesRegex(ValueError, f"^--preset={path}: {path} does not parse .*"
                                                "--ngf=abc"):
            torch_import.preset_config(path)
        with open(path, "w") as f:
            f.write("--flagfile=configs/cut.cfg\n--qs_layers=4,x\n")
        with self.assertRaisesRegex(ValueError, f"^--preset={path}: {path} does not parse .*"
                                                "--qs_layers must be comma-separated integers"):
            torch_import.preset_config(path)
        with open(path, "w") as f:
            f.write("--flagfile=configs/cut.cfg\n--crop_size=30\n")
        with self.assertRaisesRegex(ValueError, f"^--preset={path}: {path}: --crop_size must be "
                                                "a multiple of 4"):
            torch_import.preset_config(path)

    def test_mismatching_state_dicts_name_the_entry(self):
        state = torch_import.load_state_dict(PTH)
        generator = _generator(state)
        cases = [
            ({k: v for k, v in state.items() if k != "model.27.bias"}, "no model.27.bias"),
            ({**state, "model.1.weight": state["model.1.weight"][:, :2]},
             r"model.1.weight has shape \(2, 2, 7, 7\)"),
            ({**state, "model.2.running_mean": np.zeros(2, np.float32)},
             "model.2.running_mean"),
        ]
        for broken, pattern in cases:
            with self.subTest(pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    torch_import.assign_generator(generator, broken)
        no_blur_up = {k: v for k, v in state.items() if k != "model.18.filt"}
        # No blur buffer after the residual blocks: transposed-conv upsampling.
        self.assertTrue(torch_import.generator_options(no_blur_up)["no_antialias_up"])
        with self.assertRaisesRegex(FileNotFoundError, "configs/nope.cfg"):
            torch_import.preset_config("nope")
