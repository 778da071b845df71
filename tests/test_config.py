"""Flags <-> Config: one definition, flagfiles, validation with the flag's name."""
import dataclasses
import json
import os
import tempfile

import tensorflow as tf
from absl import flags

from tfattncut import config as config_lib
from tfattncut import options
from tfattncut.config import Config
from tfattncut.methods.base import PROBE_SHAPE
from tfattncut.models.discriminator import PatchDiscriminator
from tfattncut.selection import make_selectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*argv):
    flag_values = flags.FlagValues()
    config_lib.define_flags(flag_values)
    flag_values(["prog", *argv])
    return config_lib.from_flags(flag_values)


class ConfigTest(tf.test.TestCase):

    def test_helpfull_groups_the_flags_by_area(self):
        flag_values = flags.FlagValues()
        config_lib.define_flags(flag_values)
        groups = {module: {flag.name for flag in module_flags}
                  for module, module_flags in flag_values.flags_by_module_dict().items()}
        self.assertCountEqual(groups, [f"tfattncut {area} flags" for area in (
            "data", "networks", "method", "selection", "training", "evaluation")])
        for area, name in (("data", "dataroot"), ("networks", "ngf"), ("method", "model"),
                           ("method", "lambda_NCE"), ("selection", "qs_layers"),
                           ("training", "name"), ("training", "lr"),
                           ("evaluation", "eval_every_epochs")):
            self.assertIn(name, groups[f"tfattncut {area} flags"])
        self.assertIn("\ntfattncut selection flags:\n", flag_values.get_help())

    def test_methods_and_selectors_options_are_flags_of_their_area_naming_their_users(self):
        flag_values = flags.FlagValues()
        config_lib.define_flags(flag_values)
        for name, area, users in (("lambda_A", "method", "cyclegan, uag"),
                                  ("pool_size", "method", "cyclegan, dclgan, simdcl, uag"),
                                  ("lambda_sem", "method", "cut"),
                                  ("qs_local_layout", "selection", "qs_local, qs_local_global")):
            self.assertIn(name, {flag.name for flag in flag_values.get_flags_for_module(
                f"tfattncut {area} flags")})
            # (absl puts an enum's choices first.)
            self.assertRegex(flag_values[name].help, f"^(<[^>]*>: )?{users}: [A-Z]")

    def test_the_config_json_of_a_run_from_before_the_method_options_loads(self):
        # Written by commit c7bdce6, when config.py declared every method's options.
        path = os.path.join(REPO, "tests", "fixtures", "config_c7bdce6.json")
        config = Config.from_json_file(path)
        self.assertEqual((config.model, config.lambda_A, config.pool_size,
                          config.uag_attention_epochs, config.uag_threshold, config.nce_idt,
                          config.qs_local_layout, config.lr_F),
                         ("uag", 5.0, 7, 3, 0.2, False, "correct", 2e-4))
        self.assertEqual((config.lambda_sem, config.label_nce), (0.0, False))  # the defaults
        with open(path) as f:
            written = json.load(f)
        rewritten = json.loads(config.to_json())
        self.assertEqual({name: rewritten[name] for name in written}, written)

    def test_defaults_are_the_spec_defaults(self):
        config = parse()
        self.assertEqual(config.nce_layers, (0, 4, 8, 12, 16))
        self.assertEqual((config.nce_T, config.num_patches, config.lr), (0.07, 256, 2e-4))
        self.assertEqual((config.gan_mode, config.load_size, config.crop_size),
                         ("lsgan", 286, 256))

    def test_presets(self):
        fastcut = parse(f"--flagfile={REPO}/configs/fastcut.cfg")
        self.assertEqual((fastcut.lambda_NCE, fastcut.nce_idt, fastcut.flip_equivariance,
                          fastcut.n_epochs, fastcut.n_epochs_decay), (10.0, False, True, 150, 50))
        demo = parse(f"--flagfile={REPO}/configs/demo.cfg", "--ngf=8")
        self.assertEqual((demo.selector, demo.ngf, demo.make_synthetic), ("qs_global", 8, True))
        for name in ("qsattn_global", "qsattn_local", "qsattn_local_global", "attn_self",
                     "attn_external", "attn_bam", "attn_triplet", "cut"):
            self.assertEqual(parse(f"--flagfile={REPO}/configs/{name}.cfg").name, name)

    def test_lists_and_json_round_trip(self):
        config = parse("--nce_layers=4,8", "--qs_layers=8")
        self.assertEqual((config.nce_layers, config.qs_layers), ((4, 8), (8,)))
        path = os.path.join(tempfile.mkdtemp(), "config.json")
        with open(path, "w") as f:
            f.write(config.to_json())
        self.assertEqual(config_lib.Config.from_json_file(path), config)

    def test_an_edited_config_json_is_refused_naming_the_file_and_field(self):
        written = json.loads(parse("--nce_layers=4,8").to_json())
        path = os.path.join(tempfile.mkdtemp(), "config.json")
        for field, value, message in (
                ("ngf", "wide", "field ngf must be int; got 'wide'"),
                ("ngf", True, "field ngf must be int; got True"),
                ("nce_layers", [4, "8"], "field nce_layers must be a list of int"),
                ("lr", "fast", "field lr must be float"),
                ("ngf", -3, "--ngf must be"),
                ("model", "foo", "--model must be one of"),
                ("crop_size", 30, "--crop_size must be a multiple of 4")):
            with open(path, "w") as f:
                json.dump({**written, field: value}, f)
            with self.assertRaisesRegex(ValueError, f"^{path}: .*{message}"):
                config_lib.Config.from_json_file(path)
        with open(path, "w") as f:
            json.dump({**written, "lr": 1}, f)  # JSON writes 1.0 as 1 at times: still a float
        self.assertEqual(config_lib.Config.from_json_file(path).lr, 1.0)

    def test_bad_values_name_the_flag(self):
        with self.assertRaisesRegex(ValueError, "--crop_size"):
            parse("--crop_size=30")
        with self.assertRaisesRegex(ValueError, "--load_size"):
            parse("--load_size=100", "--crop_size=128")
        with self.assertRaisesRegex(flags.ValidationError, "--nce_layers"):
            parse("--nce_layers=a,b")
        with self.assertRaises(flags.IllegalFlagValueError):
            parse("--selector=nope")

    def test_name_must_stay_under_checkpoints_dir(self):
        for name in ("..", "../elsewhere", "a/../../b", "/abs/run", "", "a//b", "./a"):
            with self.assertRaisesRegex(ValueError, "^--name must be a run folder under "
                                                    "--checkpoints_dir"):
                parse(f"--name={name}")
        self.assertEqual(parse("--name=sweep/lr2e-4").run_dir, os.path.join("runs",
                                                                            "sweep/lr2e-4"))

    def test_nce_layers_must_be_strictly_increasing(self):
        # Features come back in layer order and are matched to selectors by position.
        for value in ("16,0", "4,4,16"):
            with self.assertRaisesRegex(ValueError, "^--nce_layers must be strictly increasing "
                                                    f"layer numbers; got {value}$"):
                parse(f"--nce_layers={value}")
        self.assertEqual(parse("--nce_layers=0,16").nce_layers, (0, 16))

    def test_crop_size_must_fit_the_discriminator(self):
        for n_layers_D, smallest in ((0, 6), (1, 6), (3, 24)):
            # The boundary is the discriminator's own, built on the methods' probe: at the
            # smallest crop it scores one patch. One pixel below, what TensorFlow does is the
            # platform's: an error on AMD, a map of the wrong shape on Intel's oneDNN kernels
            # ((1, 3, 3, 16) at 23² for n_layers_D=3) -- never the one patch, which is why
            # check_discriminator_fits must refuse such crops before training.
            discriminator = PatchDiscriminator(2, n_layers_D)
            discriminator(tf.zeros(PROBE_SHAPE))
            self.assertEqual(discriminator(tf.zeros([1, smallest, smallest, 3])).shape,
                             (1, 1, 1, 1))
            try:
                below_shape = discriminator(tf.zeros([1, smallest - 1, smallest - 1, 3])).shape
            except (ValueError, tf.errors.InvalidArgumentError):
                below_shape = None
            self.assertNotEqual(below_shape, (1, 1, 1, 1), msg=f"n_layers_D={n_layers_D}")
            below, fits = (smallest - 1) // 4 * 4, -(-smallest // 4) * 4  # multiples of 4
            with self.assertRaisesRegex(
                    ValueError, f"^--crop_size must be >= {smallest} .* for the discriminator of "
                                f"--n_layers_D={n_layers_D}; got {below}$"):
                parse(f"--crop_size={below}", f"--load_size={below}",
                      f"--n_layers_D={n_layers_D}")
            self.assertEqual(parse(f"--crop_size={fits}", f"--load_size={fits}",
                                   f"--n_layers_D={n_layers_D}").crop_size, fits)

    def test_numeric_flags_are_bounded_when_parsed(self):
        for flag, message in (("--lr=-0.1", "must be > 0"), ("--lr=0.0", "must be > 0"),
                              ("--nce_T=0.0", "must be > 0"),
                              ("--beta1=1.0", "must be in \\[0, 1\\)"),
                              ("--beta2=-0.5", "must be in \\[0, 1\\)"),
                              ("--batch_size=0", "must be >= 1"),
                              ("--checkpoint_every=0", "must be >= 1"),
                              ("--lambda_NCE=-1.0", "must be >= 0"),
                              ("--pool_size=-1", "must be >= 0"),
                              # keras.utils.set_random_seed's range, printed in full
                              ("--seed=-1", "must be in \\[0, 4294967295\\]")):
            with self.assertRaisesRegex(flags.IllegalFlagValueError,
                                        f"flag {flag}: {message}"):
                parse(flag)
        edges = parse("--beta1=0", "--lambda_NCE=0", "--pool_size=0", "--lr=1e-9")
        self.assertEqual((edges.beta1, edges.lambda_NCE, edges.pool_size), (0.0, 0.0, 0))

    def test_every_number_has_bounds(self):
        """A new numeric option needs its bounds too."""
        unbounded = [f.name for f in dataclasses.fields(config_lib.Config)
                     if f.type in (int, float) and f.metadata["bounds"] is None]
        self.assertEqual(unbounded, [])

    def test_validate_checks_bounds_of_configs_not_from_flags(self):
        with self.assertRaisesRegex(ValueError, "--lr must be > 0; got -0.1"):
            config_lib.validate(config_lib.Config(lr=-0.1))
        with self.assertRaisesRegex(ValueError, "--n_epochs \\+ --n_epochs_decay must be >= 1"):
            config_lib.validate(config_lib.Config(n_epochs=0, n_epochs_decay=0))
        with self.assertRaisesRegex(ValueError, "--lr_policy=cosine needs --n_epochs >= 1"):
            config_lib.validate(config_lib.Config(lr_policy="cosine", n_epochs=0))
        self.assertEqual(str(options.Bounds(0, 1, low_open=True)), "in (0, 1]")

    def test_validate_checks_choices_and_sizes_of_configs_not_from_flags(self):
        with self.assertRaisesRegex(ValueError, "--direction must be one of AtoB, BtoA; got 'x'"):
            config_lib.validate(config_lib.Config(direction="x"))
        with self.assertRaisesRegex(ValueError, "--model must be one of cut, .*; got 'nope'"):
            config_lib.validate(config_lib.Config(model="nope"))
        with self.assertRaisesRegex(ValueError, "--load_size \\(100\\) must be >= --crop_size"):
            config_lib.validate(config_lib.Config(load_size=100, crop_size=128))
        config_lib.validate(config_lib.Config(load_size=100, crop_size=128, preprocess="crop"))


class ReferenceDefaultsTest(tf.test.TestCase):
    """The defaults that make QS-Attn compute what the reference code computed."""

    def test_qs_attn_defaults_follow_the_reference(self):
        config = Config()
        self.assertEqual(config.qs_local_layout, "reference")
        self.assertEqual(config.qs_tie_break, "random")
        self.assertFalse(config.tf32)
        selectors = make_selectors(config.replace(selector="qs_local_global"), [8] * 5)
        self.assertEqual([s.tie_break for s in selectors[3:]], ["random", "random"])
        self.assertEqual([s.layout for s in selectors[3:]], ["reference", "reference"])
        index = make_selectors(config.replace(selector="qs_global", qs_tie_break="index"),
                               [8] * 5)
        self.assertEqual(index[4].tie_break, "index")

    def test_local_presets_name_the_reference_layout(self):
        for preset in ("qsattn_local", "qsattn_local_global"):
            with open(os.path.join(REPO, "configs", preset + ".cfg")) as f:
                self.assertIn("--qs_local_layout=reference\n", f.read())
