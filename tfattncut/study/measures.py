"""What the study measures of one translation, on uint8 arrays held in memory (the cached,
batched path: no files are written or decoded while scoring; docs/design/study.md,
"Measures").

  downstream_miou  segmenters trained from scratch on the translated trainA with A's labels
                   (one per downstream seed, same settings as the scorer), mean IoU on testB:
                   the sim-to-real use. Their mean is the run's score; the per-seed values are
                   kept;
  label_miou       the fixed label scorer (trained on B) on the translated testA against
                   testA's labels: are the objects still where the labels say?
  kid_seg, fid_seg KID and FID of the translated testA against testB in the label scorer's
                   feature space (domain-specific; KID is unbiased at small N, FID is not);
  psnr, ssim       the translated testA against testA_as_B, the same scenes rendered in B's
                   style: the paired ground truth of the synthetic set;
  input_distance   mean |translated - input| over testA's pixels, in [0, 1]: near 0 for a
                   translator that returns its input.
"""
import numpy as np
import tensorflow as tf

from tfattncut import inference
from tfattncut import pixels as pixel_lib
from tfattncut.evaluation import segmenter
from tfattncut.metrics import fid, fidelity, kid

# Images per call: of the translator (TRANSLATE_BATCH) and of PSNR/SSIM (FIDELITY_BATCH).
# Each image's score is its own, whatever its batch; kept as the committed scores used them.
TRANSLATE_BATCH = 16
FIDELITY_BATCH = 50


def downstream(scorers, data, train_pixels, train_labels):
    """{"per_seed": {seed: mIoU on testB}, "mean": their mean} of segmenters trained on
    `train_pixels` (uint8 [N, H, W, 3]) with `train_labels` (uint8 [N, H, W] train ids)."""
    test_b = data.split("test_b")
    per_seed = {}
    for seed in scorers.downstream_seeds:
        model = scorers.settings.fit(train_pixels, train_labels, seed)
        per_seed[str(seed)] = float(segmenter.score_arrays(model, test_b.pixels,
                                                           test_b.labels).mean_iou)
    return {"per_seed": per_seed, "mean": float(np.mean(list(per_seed.values())))}


def translation_scores(scorers, data, translated_test_a, kid_seed=0):
    """label_miou, kid_seg, fid_seg, psnr, ssim and input_distance (module docstring) of
    uint8 [N, H, W, 3] images that stand for testA translated."""
    test_a = data.split("test_a")
    if translated_test_a.shape != test_a.pixels.shape:
        raise ValueError(f"the translated testA is {translated_test_a.shape}; testA is "
                         f"{test_a.pixels.shape}")
    scores = {"label_miou": float(segmenter.score_arrays(
        scorers.label_scorer, translated_test_a, test_a.labels).mean_iou)}
    fake = segmenter.features(scorers.label_scorer, translated_test_a)
    real = scorers.reference_features(data, "test_b")
    # kid.kid's 100 subsets (docs/design/metrics.md), each every row of the 500-image sets.
    scores["kid_seg"] = float(kid.kid(fake, real, subset_size=len(real), seed=kid_seed)[0])
    scores["fid_seg"] = float(fid.frechet_distance(
        np.mean(fake, 0), np.cov(fake, rowvar=False), np.mean(real, 0),
        np.cov(real, rowvar=False)))
    paired = data.split("test_a_as_b").pixels
    psnr, ssim = [], []
    for start in range(0, len(paired), FIDELITY_BATCH):
        end = start + FIDELITY_BATCH
        images = pixel_lib.from_uint8(tf.constant(translated_test_a[start:end]))
        targets = pixel_lib.from_uint8(tf.constant(paired[start:end]))
        psnr.append(fidelity.psnr(images, targets).numpy())
        ssim.append(fidelity.ssim(images, targets).numpy())
    scores["psnr"] = float(np.concatenate(psnr).mean())
    scores["ssim"] = float(np.concatenate(ssim).mean())
    scores["input_distance"] = float(np.abs(translated_test_a.astype(np.float64)
                                            - test_a.pixels).mean() / 255)
    return scores


def translate(translator, images):
    """uint8 [N, H, W, 3] -> the translator's uint8 images, rounded as a PNG of them would
    be (tfattncut.pixels.to_uint8), in batches."""
    out = []
    for start in range(0, len(images), TRANSLATE_BATCH):
        batch = pixel_lib.from_uint8(tf.constant(images[start:start + TRANSLATE_BATCH]))
        out.append(pixel_lib.to_uint8(inference.translate(translator, batch)).numpy())
    return np.concatenate(out)
