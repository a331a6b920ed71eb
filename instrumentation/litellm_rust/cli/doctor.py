"""`litellm-rust doctor`: checks an installation and says what it finds, each finding OK, WARN or
PROBLEM with a one-line why and the fix; the exit status is 1 when any finding is a PROBLEM.

Each check is a small function returning `Finding`s; `run_checks` runs them all (a check that raises
becomes a PROBLEM naming its error, so doctor itself never crashes) and `render` prints them grouped.
`litellm-rust doctor` checks the installation and the configuration the environment gives;
`opentelemetry-instrument litellm-rust doctor` also checks what the agent did in a process it started
(providers set, litellm_rust instrumented), which is where the distro-without-exporter trap bites.
"""

import difflib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, entry_points, version

OK, WARN, PROBLEM = "OK", "WARN", "PROBLEM"

# A text both tokenizers count, for the native module's parity check.
_SAMPLE_TEXT = "litellm-rust doctor: does Rust count these tokens as litellm does?"
_SAMPLE_MODEL = "gpt-4o"


@dataclass(frozen=True)
class Finding:
    level: str
    subject: str
    why: str
    fix: str | None = None


# -- litellm and the components ---------------------------------------------------------------


def check_litellm() -> list[Finding]:
    """litellm installed, within the `instruments` range, and a release the surface was verified on."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    from litellm_rust._litellm import FULLY_VERIFIED, VERIFIED_ON
    from litellm_rust.package import _instruments

    (required,) = _instruments
    install = f"pip install '{required}'"
    try:
        installed = version("litellm")
    except PackageNotFoundError:
        return [Finding(PROBLEM, "litellm", "not installed: there is nothing to accelerate", install)]
    subject = f"litellm {installed}"
    try:
        import litellm  # noqa: F401
    except Exception as error:
        why = f"installed but does not import ({type(error).__name__}: {error}): nothing can be accelerated"
        return [Finding(PROBLEM, subject, why, f"pip install --force-reinstall '{required}'")]
    # The instrumentor's own gate: instrument() declines (logging an error) when this conflicts.
    if get_dependency_conflicts(_instruments) is not None:
        why = f"outside the supported range {required!r}: instrument() declines and nothing is accelerated"
        return [Finding(PROBLEM, subject, why, install)]
    if installed not in FULLY_VERIFIED:
        verified = [name for name, releases in VERIFIED_ON.items() if installed in releases]
        why = (
            f"within {required!r} but every component is verified only on {', '.join(FULLY_VERIFIED)}; "
            f"verified here: {', '.join(verified) or 'none'} (the others stay on litellm's Python)"
        )
        return [Finding(WARN, subject, why, f"pip install 'litellm=={FULLY_VERIFIED[-1]}'")]
    return [Finding(OK, subject, f"within {required!r} and verified")]


def check_components() -> list[Finding]:
    """Per component: its litellm names resolve, it builds, and what serves its calls: the live
    state when instrumented in this process, else what the configuration in effect would give."""
    from litellm_rust import status
    from litellm_rust._litellm import FULLY_VERIFIED, SURFACES
    from litellm_rust.components import COMPONENT_NAMES, components, unsupported
    from litellm_rust.config import ConfigError

    try:
        configured, configuration_error = _validated(_file_layer(), _environment_layer()), None
    except (ConfigError, OSError) as error:
        configured, configuration_error = None, f"{type(error).__name__}: {error}"
    statuses = status()
    findings = []
    install_verified = f"install a litellm every component is verified on ({', '.join(FULLY_VERIFIED)})"
    for name in COMPONENT_NAMES:
        if name in unsupported():
            findings.append(Finding(WARN, name, f"stays on litellm's Python: {unsupported()[name]}", install_verified))
            continue
        component = components()[name]
        missing = SURFACES[name].missing()
        if missing:
            listed = "; ".join(f"{attribute} ({why})" for attribute, why in missing.items())
            why = f"{len(missing)} litellm names do not resolve, so its Rust path cannot work here: {listed}"
            findings.append(Finding(PROBLEM, name, why, install_verified))
            continue
        try:
            served = len(component.replacements())
        except Exception as error:
            why = f"cannot be built ({type(error).__name__}: {error}): instrument() raises on it"
            findings.append(Finding(PROBLEM, name, why, "report it with this output and `pip show litellm`"))
            continue
        built = f"{len(SURFACES[name].paths)} litellm names resolve, {served} functions replaced"
        if component.instrumented:
            state = statuses[name]
            findings.append(_serving(name, built, "instrumented here", state["mode"], state["rollout_percent"]))
        elif configured is None:
            why = f"{built}; instrument() would refuse the configuration in effect ({configuration_error})"
            findings.append(Finding(WARN, name, why, "see the configuration findings"))
        else:
            settings = configured.components[name]
            findings.append(
                _serving(
                    name, built, "not instrumented here; once instrumented", settings.mode, settings.rollout_percent
                )
            )
    return findings


def _serving(name: str, built: str, where: str, mode: str, rollout_percent: float) -> Finding:
    if mode == "python":
        why = f"{built}; {where}, Python serves every call (mode python)"
        return Finding(WARN, name, why, f"OTEL_PYTHON_LITELLM_RUST_{name.upper()}_MODE=shadow to compare, then rust")
    if mode == "shadow":
        return Finding(OK, name, f"{built}; {where}, Python serves and Rust is compared (mode shadow)")
    share = "every call" if rollout_percent >= 100 else f"{rollout_percent:g}% of requests, Python the rest"
    return Finding(OK, name, f"{built}; {where}, Rust serves {share}")


def check_breakers() -> list[Finding]:
    from litellm_rust import status
    from litellm_rust.components import components

    if not any(component.instrumented for component in components().values()):
        return [Finding(OK, "breakers", "not instrumented in this process: every breaker starts closed")]
    findings = []
    for name, state in status().items():
        breaker = state["breaker"]
        if breaker["state"] == "closed":
            findings.append(Finding(OK, name, "closed"))
            continue
        reason = breaker["transitions"][-1]["reason"] if breaker["transitions"] else "no transition recorded"
        why = f"{breaker['state']}: {reason}; Python serves its calls"
        fix = (
            f"litellm_rust.release({name!r}) once the cause is resolved"
            if breaker["forced"]
            else "none needed: it probes and closes by itself once Rust behaves (breaker.cool_off_seconds)"
        )
        findings.append(Finding(WARN, name, why, fix))
    return findings


# -- the native module ------------------------------------------------------------------------


def check_native_module() -> list[Finding]:
    try:
        from litellm_rust import _native
    except ImportError as error:
        why = f"litellm_rust._native does not load ({error}): nothing can be served by Rust"
        return [Finding(PROBLEM, "native module", why, "pip install --force-reinstall litellm-rust")]
    return [Finding(OK, "native module", f"loads from {_native.__file__}")]


def check_token_count() -> list[Finding]:
    """One count by the native tokenizer directly (no call accounting) against litellm's own."""
    from litellm_rust.components import components

    component = components()["token_counter"]
    rust = component.profile(_SAMPLE_MODEL).count_batch([_SAMPLE_TEXT])[0]
    python = component.reference(model=_SAMPLE_MODEL, text=_SAMPLE_TEXT)
    subject = f"token count ({_SAMPLE_MODEL})"
    if rust != python:
        why = f"Rust counts {rust} tokens, litellm counts {python} for the same text"
        return [Finding(PROBLEM, subject, why, "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_MODE=python, and report it")]
    return [Finding(OK, subject, f"{rust} tokens, equal to litellm's token_counter")]


# -- OpenTelemetry ----------------------------------------------------------------------------

_SIGNALS = (
    ("traces", "OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter"),
    ("metrics", "OTEL_METRICS_EXPORTER", "opentelemetry_metrics_exporter"),
    ("logs", "OTEL_LOGS_EXPORTER", "opentelemetry_logs_exporter"),
)
# What `opentelemetry.distro.OpenTelemetryDistro._configure` sets for an unset exporter variable.
_DISTRO_DEFAULT_EXPORTER = "otlp"
_EXPORTER_PACKAGES = {
    "otlp_proto_grpc": "opentelemetry-exporter-otlp",
    "otlp_proto_http": "opentelemetry-exporter-otlp",
    "prometheus": "opentelemetry-exporter-prometheus",
}
_NO_PROVIDER = ("ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider")


def _under_opentelemetry_instrument() -> bool:
    """Whether `opentelemetry-instrument` started this process (its `sitecustomize` ran)."""
    started_by = getattr(sys.modules.get("sitecustomize"), "__file__", "") or ""
    return "auto_instrumentation" in started_by


def check_sdk() -> list[Finding]:
    """The SDK installed, and the global providers: the API's proxy and no-op ones export nothing."""
    try:
        sdk = version("opentelemetry-sdk")
    except PackageNotFoundError:
        why = "not installed: litellm-rust's metrics and spans go to the API's no-op providers"
        return [Finding(WARN, "opentelemetry-sdk", why, "pip install 'litellm-rust[prometheus]'")]
    from opentelemetry import metrics, trace

    findings = [Finding(OK, "opentelemetry-sdk", f"{sdk} installed")]
    for kind, provider in (("tracer", trace.get_tracer_provider()), ("meter", metrics.get_meter_provider())):
        subject, found = f"{kind} provider", type(provider).__name__
        if found not in _NO_PROVIDER:
            findings.append(Finding(OK, subject, f"{type(provider).__module__}.{found} is set"))
        elif _under_opentelemetry_instrument():
            why = f"opentelemetry-instrument set none ({found}): nothing is exported"
            findings.append(Finding(PROBLEM, subject, why, "see the exporter findings and the agent's log above"))
        else:
            why = (
                "not set in this process (doctor is not your app); "
                "`opentelemetry-instrument litellm-rust doctor` checks the ones the agent sets"
            )
            findings.append(Finding(OK, subject, why))
    return findings


def check_exporters() -> list[Finding]:
    """The exporters the environment selects for `opentelemetry-instrument`, and whether each is installed.

    With opentelemetry-distro installed and a selected exporter missing, the agent's configurator
    raises, `opentelemetry-instrument` logs "Failed to auto initialize OpenTelemetry" and loads no
    instrumentor: the app runs unaccelerated, and nothing else says so."""
    if not list(entry_points(group="opentelemetry_configurator")):
        why = (
            "no SDK configurator installed (opentelemetry-distro): opentelemetry-instrument loads the "
            "instrumentor but sets no providers, and OTEL_*_EXPORTER select nothing"
        )
        return [Finding(OK, "exporters", why)]
    # The SDK's own resolution of an exporter name (`otlp` and the OTLP protocol variables).
    from opentelemetry.sdk._configuration import _get_exporter_entry_point

    distro = list(entry_points(group="opentelemetry_distro", name="distro"))
    findings, unavailable = [], {}
    for signal, variable, group in _SIGNALS:
        selected = os.environ.get(variable)
        if selected:
            subject = f"{variable}={selected}"
        elif distro:
            selected = _DISTRO_DEFAULT_EXPORTER
            subject = f"{variable}={selected} (opentelemetry-distro's default)"
        else:
            selected, subject = "none", f"{variable} unset"
        if selected.strip().lower() == "none":
            findings.append(Finding(OK, subject, f"no {signal} exporter"))
            continue
        for name in selected.split(","):
            entry_point = _get_exporter_entry_point(name.strip(), signal)
            installed = list(entry_points(group=group, name=entry_point))
            if installed:
                findings.append(Finding(OK, subject, f"exporter {entry_point!r} installed ({installed[0].value})"))
                continue
            package = _EXPORTER_PACKAGES.get(entry_point, f"the package providing the {entry_point!r} exporter")
            unavailable[variable] = package
            why = f"exporter {entry_point!r} is not installed (no {group!r} entry point of that name)"
            findings.append(Finding(PROBLEM, subject, why, f"{variable}=none, or pip install {package}"))
    if unavailable:
        metrics_reader = (
            "prometheus" if entry_points(group="opentelemetry_metrics_exporter", name="prometheus") else "none"
        )
        settings = " ".join(
            f"{variable}={metrics_reader if variable == 'OTEL_METRICS_EXPORTER' else 'none'}"
            for variable in unavailable
        )
        if metrics_reader == "prometheus" and "OTEL_METRICS_EXPORTER" in unavailable:
            settings += " (or OTEL_METRICS_EXPORTER=none)"
        why = "would fail to initialise and load no instrumentor: litellm runs with zero acceleration, silently"
        fix = f"{settings}, or pip install {' '.join(sorted(set(unavailable.values())))}"
        findings.append(Finding(PROBLEM, "opentelemetry-instrument", why, fix))
    return findings


def check_agent() -> list[Finding]:
    """Whether `opentelemetry-instrument` finds and loads the instrumentor."""
    from litellm_rust.components import components

    findings = []
    if entry_points(group="opentelemetry_instrumentor", name="litellm_rust"):
        findings.append(
            Finding(OK, "instrumentor entry point", "opentelemetry-instrument finds the litellm_rust instrumentor")
        )
    else:
        why = "no 'litellm_rust' opentelemetry_instrumentor entry point: opentelemetry-instrument never loads it"
        findings.append(
            Finding(PROBLEM, "instrumentor entry point", why, "pip install litellm-rust (not only on PYTHONPATH)")
        )
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if {"litellm_rust", "*"} & {name.strip() for name in disabled.split(",")}:
        subject = f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={disabled}"
        why = "names litellm_rust: opentelemetry-instrument skips it"
        findings.append(Finding(PROBLEM, subject, why, "remove litellm_rust (or *) from it"))
    if _under_opentelemetry_instrument():
        if any(component.instrumented for component in components().values()):
            findings.append(Finding(OK, "this process", "opentelemetry-instrument instrumented litellm_rust"))
        else:
            why = "started by opentelemetry-instrument, but litellm_rust is not instrumented"
            findings.append(Finding(PROBLEM, "this process", why, "see the findings above and the agent's log"))
    return findings


# -- configuration ----------------------------------------------------------------------------


def _file_layer() -> Mapping:
    from litellm_rust.config import CONFIG_ENV, load_file

    path = os.environ.get(CONFIG_ENV)
    return load_file(path) if path else {}


def _environment_layer(environ: Mapping[str, str] = os.environ) -> dict:
    from litellm_rust.components import settings_classes
    from litellm_rust.config import from_environment

    return from_environment(settings_classes(), environ)


def _validated(*layers: Mapping):
    """The settings `layers` make over the defaults, checked as `instrument()` checks them (the
    fields, then each component's combination); raises `ConfigError`."""
    from litellm_rust.components import components, settings_classes
    from litellm_rust.config import Config

    config = Config.build(settings_classes(), layers)
    for name, component in components().items():
        component.check_settings(config.components[name])
    return config


def check_config_file() -> list[Finding]:
    from litellm_rust.config import CONFIG_ENV, ConfigError

    path = os.environ.get(CONFIG_ENV)
    if not path:
        return [Finding(OK, "config file", f"none ({CONFIG_ENV} is not set)")]
    subject = f"config file {path}"
    try:
        layer = _file_layer()
        _validated(layer)
    except OSError as error:
        return [Finding(PROBLEM, subject, f"cannot be read: {error}", f"point {CONFIG_ENV} at a readable file")]
    except ConfigError as error:
        return [Finding(PROBLEM, subject, str(error), "correct the field named, or remove it")]
    return [Finding(OK, subject, f"parses and validates ({len(layer)} top-level entries)")]


def check_environment_variables() -> list[Finding]:
    """Every `OTEL_PYTHON_LITELLM_RUST_*` variable set: known, and its value valid on its own."""
    from litellm_rust.components import settings_classes
    from litellm_rust.config import (
        CONFIG_ENV,
        ENV_PREFIX,
        WEBHOOK_ADDRESS_ENV,
        WEBHOOK_TOKEN_FILE_ENV,
        ConfigError,
        environment_variable_names,
    )

    known = environment_variable_names(settings_classes())
    settings_variables = set(known) - {CONFIG_ENV, WEBHOOK_ADDRESS_ENV, WEBHOOK_TOKEN_FILE_ENV}
    variables = sorted(variable for variable in os.environ if variable.startswith(ENV_PREFIX))
    if not variables:
        return [Finding(OK, "environment", f"no {ENV_PREFIX}* variables set: the defaults and the file apply")]
    findings = []
    for variable in variables:
        value = os.environ[variable]
        subject = f"{variable}={value}"
        if variable not in known:
            guess = difflib.get_close_matches(variable, known, n=1)
            fix = f"did you mean {guess[0]}?" if guess else "remove it"
            findings.append(Finding(WARN, subject, "not a litellm-rust variable: ignored", fix))
        elif not value:
            findings.append(Finding(OK, subject, "empty: ignored"))
        elif variable in settings_variables:
            try:
                _validated(_environment_layer({variable: value}))
            except ConfigError as error:
                findings.append(Finding(PROBLEM, subject, str(error), f"correct or unset {variable}"))
            else:
                findings.append(Finding(OK, subject, "valid"))
        elif variable == WEBHOOK_ADDRESS_ENV and not value.rpartition(":")[2].isdigit():
            why = "expected host:port: instrument() raises on it"
            findings.append(Finding(PROBLEM, subject, why, f"{variable}=127.0.0.1:9095, for example"))
        else:
            findings.append(Finding(OK, subject, "read by instrument()"))
    return findings


def check_configuration_in_effect() -> list[Finding]:
    """The file and the environment together (each may be valid alone, their combination not)."""
    from litellm_rust.config import ConfigError

    try:
        file_layer, environment_layer = _file_layer(), _environment_layer()
        _validated(file_layer)
        _validated(environment_layer)
    except (ConfigError, OSError):
        return []  # already a finding of the source at fault
    try:
        _validated(file_layer, environment_layer)
    except ConfigError as error:
        return [Finding(PROBLEM, "file and environment together", str(error), "correct the field named")]
    return [Finding(OK, "file and environment together", "valid")]


CHECKS: dict[str, tuple[Callable[[], list[Finding]], ...]] = {
    "litellm": (check_litellm,),
    "components": (check_components,),
    "native module": (check_native_module, check_token_count),
    "OpenTelemetry": (check_sdk, check_exporters, check_agent),
    "breakers": (check_breakers,),
    "configuration": (check_config_file, check_environment_variables, check_configuration_in_effect),
}


def run_checks(checks: Mapping[str, tuple[Callable[[], list[Finding]], ...]] = CHECKS) -> dict[str, list[Finding]]:
    """Every check's findings, by group; a check that raises is a PROBLEM naming its error."""
    report = {}
    for group, functions in checks.items():
        findings = []
        for check in functions:
            try:
                findings += check()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # a native panic is a BaseException
                why = f"the check raised {type(error).__name__}: {error}"
                findings.append(Finding(PROBLEM, check.__name__.removeprefix("check_"), why, None))
        report[group] = findings
    return report


def render(report: Mapping[str, list[Finding]]) -> str:
    lines = []
    for group, findings in report.items():
        lines.append(group)
        for finding in findings:
            lines.append(f"  {finding.level:<8}{finding.subject}: {finding.why}")
            if finding.fix:
                lines.append(f"  {'':<8}fix: {finding.fix}")
    counts = {level: sum(f.level == level for fs in report.values() for f in fs) for level in (PROBLEM, WARN)}
    lines.append(f"problems: {counts[PROBLEM]}, warnings: {counts[WARN]}")
    return "\n".join(lines)


def run_doctor(as_json: bool = False) -> int:
    """Print the findings (text, or JSON with `as_json`); 1 when any is a PROBLEM, else 0."""
    report = run_checks()
    if as_json:
        json.dump({group: [asdict(f) for f in findings] for group, findings in report.items()}, sys.stdout, indent=2)
        print()
    else:
        print(render(report))
    return int(any(finding.level == PROBLEM for findings in report.values() for finding in findings))
