"""Test-wide settings, also seen by the notebook kernels that nbval starts (they inherit the environment)."""

import os

# The notebooks run in quick mode under test: the same code path on the small synthetic set.
os.environ.setdefault("ALEXNET_QUICK", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
