"""The Keras dtype policy of --mixed_precision: set while a method's networks are built, and
checked by the method's constructor."""
import contextlib

import keras

from tfattncut.options import PRECISION_POLICIES


@contextlib.contextmanager
def precision_policy(mixed_precision):
    """Keras' global dtype policy for --mixed_precision while networks are built.

    A layer keeps the policy it was built with, so only construction needs it; the previous
    global policy is restored on exit, so nothing leaks into later code (or tests).
    """
    if mixed_precision not in PRECISION_POLICIES:
        raise ValueError(f"--mixed_precision must be one of {', '.join(PRECISION_POLICIES)}; "
                         f"got {mixed_precision!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def check_precision_policy(mixed_precision):
    """Raises unless the global Keras policy is --mixed_precision's (called by a method's
    constructor: networks built under another policy would silently run in it)."""
    current = keras.mixed_precision.global_policy().name
    if current != PRECISION_POLICIES[mixed_precision]:
        raise ValueError(
            f"--mixed_precision={mixed_precision} needs the Keras policy "
            f"{PRECISION_POLICIES[mixed_precision]!r} while the networks are built, but it is "
            f"{current!r}; build the method with tfattncut.methods.build_method(config)")
