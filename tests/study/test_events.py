"""What a run's event files say: step time, series and training minutes, read with
TensorBoard's loader from raw events whose wall times are exact."""
import os

import numpy as np
import tensorflow as tf

from tfattncut.study import events


def _scalar_event(tag, step, wall_time, value):
    summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
        tag=tag, tensor=tf.make_tensor_proto(np.float32(value)),
        metadata=tf.compat.v1.SummaryMetadata(
            plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")))])
    return tf.compat.v1.Event(wall_time=wall_time, step=step, summary=summary)


def _write(path, events_to_write):
    with tf.io.TFRecordWriter(path) as writer:
        for event in events_to_write:
            writer.write(event.SerializeToString())


class EventsTest(tf.test.TestCase):

    def test_median_step_time_and_series(self):
        logdir = self.get_temp_dir()
        # Steps 1, 11, 21, 31: 10 steps take 2 s, except a 60 s resume gap; the median
        # ignores the gap.
        walls = {1: 100.0, 11: 102.0, 21: 162.0, 31: 164.0}
        _write(os.path.join(logdir, "events.out.tfevents.1"),
               [e for step, wall in walls.items() for e in (
                   _scalar_event("loss/G", step, wall, 1.0),
                   _scalar_event("selection/zero_entropy_fraction/layer_16", step, wall,
                                 step / 100))])
        run = events.RunEvents(logdir)
        self.assertAllClose(run.median_step_time(), 0.2)
        series = run.scalar_series("selection/zero_entropy_fraction/")
        self.assertEqual(list(series), ["layer_16"])
        self.assertAllClose(series["layer_16"], [[s, s / 100] for s in walls], rtol=1e-6)

    def test_training_minutes_sum_each_sittings_span_and_survive_a_cut_file(self):
        logdir = self.get_temp_dir()
        # Two sittings: 100-160 s and 1000-1030 s; the gap between them is not training. The
        # second file was cut short by a kill after its last whole record.
        for name, walls in (("1", (100.0, 130.0, 160.0)), ("2", (1000.0, 1030.0))):
            path = os.path.join(logdir, f"events.out.tfevents.{name}")
            _write(path, [_scalar_event("loss/G", step, wall, 1.0)
                          for step, wall in enumerate(walls)])
        with open(path, "ab") as f:
            f.write(b"\x10\x00\x00")
        self.assertAllClose(events.RunEvents(logdir).training_minutes(), 1.5)
        empty = events.RunEvents(os.path.join(logdir, "empty"))
        self.assertEqual(empty.training_minutes(), 0)
        self.assertIsNone(empty.median_step_time())
