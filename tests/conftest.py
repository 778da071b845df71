"""pytest settings shared by every test module."""
import os

# Quiet TF's C++ start-up logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """Drop tf.test.TestCase's inherited `test_session` (a deprecated context manager that
    pytest would otherwise collect and report as a skipped test)."""
    items[:] = [item for item in items if item.name != "test_session"]


def _split_cpu_into_two_devices():
    """Two logical CPU devices, so MirroredStrategy tests run with 2 replicas on a CPU.

    This must happen before TensorFlow initialises its runtime, hence here, at collection.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


_split_cpu_into_two_devices()


import pytest  # noqa: E402  (after the device split above, which must run first)


@pytest.fixture(autouse=True)
def _fresh_collective_keys():
    """Each MirroredStrategy in one process would otherwise reuse the previous one's
    collective keys, and a later strategy's all-reduce can abort on the earlier's ("Collective
    instance … expected type"); TensorFlow's own tests move the key base the same way."""
    import tensorflow as tf

    tf.distribute.MirroredStrategy._collective_key_base += 100_000
    yield
