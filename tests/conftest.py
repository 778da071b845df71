"""pytest settings shared by every test module."""
import os

# Quiet TF's C++ start-up logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's CPU code generation without LLVM's optimisations: the compiled tests run tiny steps a
# few times, so compile time is nearly all their cost (tests/training/test_strategy.py: 85 s
# of CPU instead of 124 s). The HLO passes, fusion included, are the same, and float32
# semantics too (LLVM's optimisations may contract a*b+c into an FMA, which the tolerances
# for XLA's reordering already cover).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: end to end (processes, servers, whole runs); BUILD tags the same "
        "tests \"slow\". `-m 'not slow'` leaves them out of a quick run; CI runs them.")


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
