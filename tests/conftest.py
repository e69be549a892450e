"""Shared fixtures: a throw-away AiiDA configuration folder and aiida-core's profile fixtures."""

import os
import tempfile

# Must happen before anything imports aiida: nothing may be written to ~/.aiida by the tests.
os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="autopipe-tests-aiida-"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

pytest_plugins = ["aiida.tools.pytest_fixtures"]
