"""Hypothesis profiles for the whole suite.

`ci` is derandomized and bounded so a CI run is repeatable and fits its time budget; `fuzz` is for
long local hunts. `HYPOTHESIS_PROFILE` picks one explicitly; otherwise `CI=true` selects `ci`.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
