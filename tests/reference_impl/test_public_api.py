"""The platform side's public API (issue 10): each package's `__all__` is exactly what users
import, every name in it resolves, and every error class derives from `PlatformError`.

A change to a list below is a change to the public API: make it on purpose, with the docs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import reference_impl
from reference_impl.errors import PlatformError

PUBLIC = {
    "reference_impl": [
        "Campaign",
        "Meta",
        "PlatformError",
        "Provider",
        "ReceiverConfig",
        "create_app",
        "grade",
        "live_run",
        "load_plan",
        "load_providers",
        "parse_meta",
        "run_demo",
    ],
    "reference_impl.sender": [
        "CONNECTION_ERROR",
        "DISPATCHING_FAILED",
        "INVALID_EMAIL",
        "TIMEOUT",
        "Attribution",
        "AudienceError",
        "Campaign",
        "CampaignError",
        "CampaignReport",
        "Content",
        "DemoSummary",
        "DkimError",
        "Failure",
        "MessageError",
        "Provider",
        "ProviderError",
        "ReceiverSuppression",
        "Result",
        "SendFailed",
        "SessionError",
        "SessionUnavailable",
        "SmtpSession",
        "StoreSuppression",
        "Suppressed",
        "Suppression",
        "SuppressionUnavailable",
        "build_message",
        "build_test_email",
        "check_attribution",
        "classify",
        "generate_key",
        "load_providers",
        "open_session",
        "parse_providers",
        "read_audience",
        "run_demo",
        "select_provider",
        "sign_message",
    ],
    "reference_impl.sender.deliverability": [
        "CHECKS",
        "FAIL",
        "PASS",
        "VERDICTS",
        "WARN",
        "AuthResultsError",
        "AuthenticationResults",
        "EspProbeError",
        "Finding",
        "Probe",
        "Zone",
        "ZoneError",
        "build_probe",
        "check_message",
        "load_zone",
        "parse_authentication_results",
        "parse_zone",
        "worst",
    ],
    "reference_impl.certify": [
        "CHECKS",
        "MUST",
        "SHOULD",
        "Certification",
        "CheckDef",
        "CheckResult",
        "Evidence",
        "LiveRunError",
        "Plan",
        "PlanError",
        "ProbeMetaError",
        "ProbeProviderError",
        "ProbeSpec",
        "Provenance",
        "Recording",
        "RecordingError",
        "SentProbe",
        "VendorUnreachable",
        "grade",
        "live_run",
        "load_plan",
        "parse_plan",
        "read_recording",
        "write_report",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_exactly_the_curated_list_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert list(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_exported_error_derives_from_platform_error(package: str) -> None:
    module = importlib.import_module(package)
    exported = [getattr(module, name) for name in module.__all__]
    errors = [x for x in exported if inspect.isclass(x) and issubclass(x, BaseException)]
    assert all(issubclass(error, PlatformError) for error in errors), errors


def _platform_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(reference_impl.__path__, "reference_impl.")
        if info.name.split(".")[1] in ("sender", "certify", "cli", "errors")
    )


def test_every_error_class_of_sender_and_certify_derives_from_platform_error() -> None:
    """One root per side: the CLI catches `PlatformError`, so an error outside it is a traceback."""
    outside = []
    for name in _platform_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == name
                and not issubclass(value, PlatformError)
                and name != "reference_impl.cli"  # the CLI's own click exception, by design
            ):
                outside.append(f"{name}.{value.__name__}")
    assert outside == []
