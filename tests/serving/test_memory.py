"""tfattncut.serving.memory: the machine's memory and the peak a call reaches."""
import os
from unittest import mock

import numpy as np
import tensorflow as tf

from tfattncut.serving import memory

MIB = 1 << 20


class MemoryTest(tf.test.TestCase):

    def test_the_default_budget_is_a_share_of_the_machines_memory(self):
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.assertBetween(memory.machine_memory_bytes(), 64 * MIB, physical)
        self.assertEqual(memory.default_budget_bytes(),
                         int(memory.machine_memory_bytes() * memory.DEFAULT_BUDGET_SHARE))

    def test_the_peak_of_a_call_counts_what_it_held_and_freed(self):
        runs = {"a TensorFlow tensor": lambda: tf.reduce_sum(tf.ones([16 * MIB])).numpy()}
        if os.access("/proc/self/clear_refs", os.W_OK):  # the kernel's high-water mark
            runs["a NumPy array"] = lambda: np.ones(64 * MIB, np.uint8).sum()
        for name, run in runs.items():
            with self.subTest(name):
                # 64 MiB held at once, freed before the call returns. The kernel's count moves
                # by pages the rest of the process frees or touches meanwhile (a few MiB).
                self.assertGreaterEqual(memory.peak_growth_bytes(run), 56 * MIB)

    def test_memory_held_before_the_call_does_not_count(self):
        # 128 MiB of tensors alive throughout (as a test process or a server holds its
        # models); the call itself holds 4 MiB. TensorFlow's allocator reports its peak as
        # the bytes in use, those held before included: only the rise above them counts.
        held = [tf.ones([16 * MIB]) + float(i) for i in range(2)]
        growth = memory.peak_growth_bytes(lambda: tf.reduce_sum(tf.ones([MIB])).numpy())
        self.assertLess(growth, 64 * MIB)
        self.assertLen(held, 2)

    def test_without_allocator_statistics_the_kernels_count_is_used(self):
        # On an AVX2 CPU TensorFlow keeps no CPU allocator statistics (oneDNN is off): the
        # same as reset_memory_stats raising there.
        def no_statistics(device):
            raise ValueError(f"Cannot reset memory stats for device '{device}'")

        with mock.patch.object(tf.config.experimental, "reset_memory_stats", no_statistics):
            if os.access("/proc/self/clear_refs", os.W_OK):
                self.assertGreaterEqual(
                    memory.peak_growth_bytes(lambda: np.ones(64 * MIB, np.uint8).sum()),
                    56 * MIB)
            with mock.patch.object(memory, "_reset_high_water_mark", return_value=False):
                with self.assertRaisesRegex(RuntimeError, "cannot measure a call's memory"):
                    memory.peak_growth_bytes(lambda: None)
