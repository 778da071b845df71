"""Evaluation metrics (docs/design/metrics.md), one module each: `inception` (backbones),
`streaming` (one pass over an image set), `fid`, `kid`, `inception_score`, `swd`,
`fidelity` (PSNR, SSIM) and `segmentation`. Modules are not re-exported here because the
main functions share their modules' names (`fid.fid`, `kid.kid`, `swd.swd`)."""
