"""The reference's single-image translate path, in PyTorch, for launch.benchmark --bulk's
reference row, and the reference CUT generator that tests/fixtures/make_torch_fixture.py
saves:

    TORCH_PYTHON launch/torch_reference.py --input=DIR --output=DIR [--ngf=64 --blocks=9]

translates every PNG in DIR as the public CUT code's test.py does with --preprocess=none
(PIL decode, bicubic resize to multiples of 4, ToTensor, Normalize(0.5, 0.5), netG under
no_grad at batch 1, tensor2im, PIL save), with untrained weights (speed does not depend on
their values), and prints one JSON line: images, seconds, peak_memory_mb. The generator is
ResnetGenerator, ResnetBlock, Downsample and Upsample of the reference's models/networks.py,
with instance norm and no dropout (CUT's defaults).

torch is not a dependency of tfattncut, so this is a script for an interpreter that has it
(`--reference_python` of the benchmark), not an importable tfattncut module, and it imports
nothing from tfattncut or absl.
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F


def binomial(size):
    row = torch.tensor({3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[size])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial(3)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d([1, 1, 1, 1])
        self.channels = channels

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=self.channels)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", (binomial(4) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])
        self.channels = channels

    def forward(self, x):
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2,
                                 groups=self.channels)[:, :, 1:, 1:]
        return out[:, :, :-1, :-1]


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, ngf, n_blocks):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf),
                 nn.ReLU(True)]
        for mult in (1, 2):
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, padding=1),
                      nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True),
                      Downsample(ngf * mult * 2)]
        model += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            model += [Upsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, padding=1),
                      nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def _make_power_2(image, base=4):
    """data/base_dataset.py's __make_power_2: the reference's --preprocess=none."""
    width, height = image.size
    size = (int(round(width / base) * base), int(round(height / base) * base))
    return image if size == image.size else image.resize(size, Image.BICUBIC)


def translate_folder(net, input_dir, output_dir):
    """Every PNG of INPUT_DIR through the reference's test.py path; returns the count."""
    names = sorted(name for name in os.listdir(input_dir) if name.endswith(".png"))
    os.makedirs(output_dir, exist_ok=True)
    for name in names:
        image = _make_power_2(Image.open(os.path.join(input_dir, name)).convert("RGB"))
        pixels = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)
        with torch.no_grad():
            fake = net(((pixels - 0.5) / 0.5)[None])
        out = (fake[0].cpu().float().numpy().transpose(1, 2, 0) + 1) / 2.0 * 255.0
        Image.fromarray(out.astype(np.uint8)).save(os.path.join(output_dir, name))
    return len(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="Folder of PNGs to translate.")
    parser.add_argument("--output", required=True, help="Folder for the translations.")
    parser.add_argument("--ngf", type=int, default=64, help="Generator width (CUT: 64).")
    parser.add_argument("--blocks", type=int, default=9, help="Residual blocks (CUT: 9).")
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    net = ResnetGenerator(args.ngf, args.blocks).eval()
    count = translate_folder(net, args.input, args.output)
    print(json.dumps({"images": count, "seconds": time.perf_counter() - start,
                      "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      / 1024}))


if __name__ == "__main__":
    main()
