"""The ``kafka-reliable`` command line: one module per verb group, each with ``register()``."""
