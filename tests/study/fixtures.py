"""A tiny study the tests build themselves: the synthetic scenes at 64², four images per
split, and scorers trained on them in seconds."""
import os
import tempfile

from tfattncut.data import synthetic
from tfattncut.study import plan, scorers
from tfattncut.study.data import StudyData

TINY_SEGMENTER = scorers.SegmenterSettings(epochs=1, batch_size=4, width=4, label_epochs=2)
# What the end-to-end tests train: 32² crops of the 64² scenes, narrow networks, 8 steps.
TINY_TRAIN_FLAGS = ("--load_size=32", "--crop_size=32", "--netG=resnet_6blocks", "--ngf=4",
                    "--ndf=4", "--netF_nc=8", "--num_patches=8", "--n_epochs=1",
                    "--n_epochs_decay=1", "--summary_every=2", "--image_every=4",
                    "--checkpoint_every=2")


def tiny_data(root=None, count=4):
    """StudyData of a freshly rendered set with `count` images per split."""
    root = root or tempfile.mkdtemp()
    dataroot = os.path.join(root, "synth")
    synthetic.generate_dataset(dataroot, size=64, num_train=count, num_test=count,
                               progress=False)
    return StudyData(dataroot)


def tiny_study(variants=("cut",), **changes):
    """(settings, data, scorers) of a study in a new folder, scorers trained and written."""
    root = tempfile.mkdtemp()
    data = tiny_data(root)
    values = dict(study_dir=os.path.join(root, "study"), runs_dir=os.path.join(root, "runs"),
                  dataroot=data.dataroot, variants=variants, train_flags=TINY_TRAIN_FLAGS,
                  screen_seeds=(0, 1), confirm_seeds=(5, 6), budget_factors=(2,))
    values.update(changes)
    settings = plan.StudySettings(**values)
    made = scorers.train_scorers(settings.study_dir, data, TINY_SEGMENTER,
                                 downstream_seeds=(0, 1))
    return settings, data, made
