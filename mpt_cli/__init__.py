"""The ``mpt`` command line: one small module per command group (``backbone``, ``data``, ``train``,
``eval``/``predict``, ``peft``, ``serve``), each with a ``register(subparsers)`` whose commands name
their handler with ``set_defaults(func=...)``; ``main`` builds the parser and dispatches.

It dispatches to ``training`` and ``service`` and is the only code that imports both. Importing it
and building its parser loads no torch: ``mpt serve`` reaches ``service.__main__`` (which sets
``OMP_WAIT_POLICY``) before torch loads, and ``mpt --help`` stays quick.
"""
