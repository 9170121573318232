"""Property: every command, fed generated bad arguments, environment tokens and file contents, fails cleanly.

For each command (quay, dockerhub, gcp, verify, doctor, profile, remove quay|dockerhub) hypothesis builds a
scenario: argument values (good and bad names, URLs, paths), tokens in the environment and in files (some usable
in an HTTP header, some with a second line, spaces, control or non-ASCII characters) and files (binary, not
UTF-8, broken YAML, the wrong shape, empty, a directory, missing). Every scenario carries at least one ingredient
that must make the command fail, and the API servers know no token, so none can succeed. Asserted, for every
scenario:

- the exit code is 1 (operational) or 2 (usage);
- no traceback, on stdout or stderr (unless --debug asked for one);
- no secret from the environment or from the files appears on stdout or stderr;
- no file in the scenario's folder changed (nor appeared, nor went).

The commands run in-process through typer's CliRunner, in a fresh temporary folder (also the working directory,
so that relative defaults such as gcp's terraform/gcp never reach the repository). Examples are bounded
(max_examples per command) so that the test stays a few seconds long in CI.
"""

from __future__ import annotations

import os
import string
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from provision.cli import app
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import FakeQuay

EXAMPLES = 40
DIR = object()  # a file entry that is a directory instead
runner = CliRunner()


@dataclass
class Scenario:
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes | object] = field(default_factory=dict)  # relative path -> content, or DIR
    secrets: list[str] = field(default_factory=list)  # pieces that must never be printed
    stdin: bytes | None = None

    def __repr__(self) -> str:  # hypothesis prints failing examples with this
        shown = {name: (content if content is DIR else bytes(content)[:60]) for name, content in self.files.items()}
        return f"Scenario(args={self.args!r}, env={self.env!r}, files={shown!r})"


# --- ingredients ---------------------------------------------------------------------------------------------

# No surrogates (they cannot be encoded anywhere) and no NUL in what goes into the environment.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
HALF = st.text(string.ascii_letters + string.digits, min_size=4, max_size=12)
NAMES = st.one_of(st.sampled_from(["hubs", "staging", "c1", "prod", "my-hub", "a"]), TEXT)
URLS = st.one_of(st.sampled_from(["notaurl", "ftp://x", "https://", "http://127.0.0.1:1/path", ""]), TEXT)


@st.composite
def secret(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A token as a user might paste it: usable, padded, or broken by a line break, a space, a tab, a control or a
    non-ASCII character. Returns the value and the pieces of it that must never be printed."""
    # Two halves with markers of their own, so that neither half can be mistaken for other generated text.
    first, second = "SECa" + draw(HALF), "SECb" + draw(HALF)
    core, cut = first + second, len(first)
    kind = draw(st.sampled_from(["plain", "padded", "newline", "space", "tab", "control", "nonascii", "crlf"]))
    inner = {"newline": "\n", "space": " ", "tab": "\t", "control": "\x07", "nonascii": "é", "crlf": "\r\n"}
    if kind == "plain":
        return core, [core]
    if kind == "padded":
        return f"  {core}\n", [core]
    value = core[:cut] + inner[kind] + core[cut:]
    return value, [value.strip(), core[:cut], core[cut:]]


BAD_CONTENT = st.one_of(
    st.sampled_from(
        [
            b"\xff\xfe\x00b\x00a\x00d",  # UTF-16
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # binary
            b"caf\xe9: 1\n",  # latin-1
            b"a: [1, 2\n",  # broken YAML
            b"- just\n- a list\n",  # the wrong shape
            b"",  # empty
            b"hubs: 5\n",
        ]
    ),
    st.binary(max_size=64),
)


@st.composite
def file_entry(draw: st.DrawFn, scenario: Scenario, name: str, *, bad: bool) -> str:
    """Put a file (or a directory, or nothing) at `name` in the scenario; returns the path argument."""
    if bad:
        choice = draw(st.sampled_from(["content", "content", "dir", "missing"]))
        if choice == "content":
            scenario.files[name] = draw(BAD_CONTENT)
        elif choice == "dir":
            scenario.files[name] = DIR
    else:
        scenario.files[name] = draw(st.sampled_from([b"", b"jupyterhub: {}\n", b"# comment\nbinderhub-service: {}\n"]))
    return "{tmp}/" + name


def maybe(draw: st.DrawFn, args: list[str], option: str, values: st.SearchStrategy[str]) -> None:
    if draw(st.booleans()):
        args += [option, draw(values)]


@st.composite
def token_into(draw: st.DrawFn, scenario: Scenario, env_var: str) -> None:
    """The API token, in the environment or in a --token-file; always present, never known to the server."""
    value, pieces = draw(secret())
    scenario.secrets += pieces
    if draw(st.booleans()):
        scenario.env[env_var] = value
    else:
        scenario.files["token"] = value.encode()
        scenario.args += ["--token-file", "{tmp}/token"]
        scenario.env[env_var] = ""


@st.composite
def hub_files(draw: st.DrawFn, scenario: Scenario, *, secret_file: bool = True) -> None:
    """The hub-file options, each good or bad."""
    args = scenario.args
    if draw(st.booleans()):
        args += ["--values-file", draw(file_entry(scenario, "h.values.yaml", bad=draw(st.booleans())))]
    if secret_file and draw(st.booleans()):
        args += ["--secret-file", draw(file_entry(scenario, "enc-h.secret.values.yaml", bad=draw(st.booleans())))]
    if draw(st.booleans()):
        args += ["--cluster-config", draw(file_entry(scenario, "cluster.yaml", bad=draw(st.booleans())))]
    if draw(st.booleans()):
        args += ["--images-file", draw(file_entry(scenario, "images.yaml", bad=True))]
    maybe(draw, args, "--image", TEXT)
    for flag in ("--dry-run", "--debug", "-v", "--profile"):
        if draw(st.booleans()):
            args.append(flag)
    if draw(st.booleans()):
        args += ["--format", draw(st.sampled_from(["json", "yaml", "xml"]))]


# --- one scenario builder per command --------------------------------------------------------------------------


@st.composite
def quay_scenario(draw: st.DrawFn, url: str) -> Scenario:
    scenario = Scenario(["quay", "--org", draw(NAMES)])
    maybe(draw, scenario.args, "--hub", NAMES)
    maybe(draw, scenario.args, "--cluster", NAMES)
    maybe(draw, scenario.args, "--member", NAMES)
    maybe(draw, scenario.args, "--robot", NAMES)
    maybe(draw, scenario.args, "--email", TEXT)
    maybe(draw, scenario.args, "--deadline", st.sampled_from(["5", "0", "-1", "soon"]))
    for flag in ("--rotate", "--shared-org"):
        if draw(st.booleans()):
            scenario.args.append(flag)
    scenario.args += ["--api-url", draw(st.one_of(st.just(url), URLS))]
    draw(token_into(scenario, "QUAY_TOKEN"))
    draw(hub_files(scenario))
    return scenario


@st.composite
def dockerhub_scenario(draw: st.DrawFn, url: str) -> Scenario:
    scenario = Scenario(["dockerhub", "--namespace", draw(NAMES), "--hub", draw(NAMES)])
    maybe(draw, scenario.args, "--cluster", NAMES)
    maybe(draw, scenario.args, "--token-label", TEXT)
    maybe(draw, scenario.args, "--deadline", st.sampled_from(["5", "0", "x"]))
    for flag in ("--org", "--rotate", "--private"):
        if draw(st.booleans()):
            scenario.args.append(flag)
    scenario.args += ["--api-url", draw(st.one_of(st.just(url), URLS))]
    user, pieces = draw(secret())
    scenario.env["DOCKERHUB_USERNAME"] = draw(st.one_of(st.just("alice"), ENV_TEXT.filter(str.strip)))
    draw(token_into(scenario, "DOCKERHUB_TOKEN"))
    draw(hub_files(scenario))
    del user, pieces
    return scenario


@st.composite
def gcp_scenario(draw: st.DrawFn) -> Scenario:
    # The terraform folder is never a real module (missing, or a file): gcp must stop before terraform runs.
    scenario = Scenario(["gcp", "--cluster", draw(NAMES), "--hub", draw(NAMES)])
    maybe(draw, scenario.args, "--repo", NAMES)
    if draw(st.booleans()):
        scenario.files["tf"] = b"not a folder"
    scenario.args += ["--terraform-dir", "{tmp}/tf", "--yes"]
    if draw(st.booleans()):
        scenario.args += ["--var-file", draw(file_entry(scenario, "c.tfvars", bad=True))]
    draw(hub_files(scenario))
    return scenario


@st.composite
def verify_scenario(draw: st.DrawFn, url: str) -> Scenario:
    scenario = Scenario(["verify"])
    if draw(st.booleans()):
        scenario.args += ["--values-file", draw(file_entry(scenario, "h.values.yaml", bad=True))]
        if draw(st.booleans()):
            value, pieces = draw(secret())
            scenario.secrets += pieces
            scenario.stdin = draw(st.one_of(st.just(f"password: {value}\n".encode()), BAD_CONTENT))
            scenario.args.append("--secret-stdin")
    else:
        password, pieces = draw(secret())
        scenario.secrets += pieces
        path = draw(file_entry(scenario, "password", bad=True))
        if scenario.files.get("password") not in (None, DIR) and draw(st.booleans()):
            # A good-looking password next to bad bytes: the password must not leak with the complaint.
            scenario.files["password"] = password.encode() + b"\n\xff\xfe"
        scenario.args += ["--server", draw(st.one_of(st.just(url), URLS)), "--username", draw(NAMES),
                          "--password-file", path, "--image-prefix", draw(TEXT)]  # fmt: skip
    for flag in ("--debug", "-v"):
        if draw(st.booleans()):
            scenario.args.append(flag)
    return scenario


@st.composite
def doctor_scenario(draw: st.DrawFn) -> Scenario:
    """A cluster folder whose hub lists a broken file, next to values holding a plaintext secret."""
    value, pieces = draw(secret())
    scenario = Scenario(["doctor", "{tmp}/clusters"], secrets=pieces)
    bad = draw(BAD_CONTENT.filter(lambda b: b not in (b"", b"- just\n- a list\n", b"hubs: 5\n")))
    cluster = {"name": "c1", "provider": "gcp", "hubs": [{"name": "h", "helm_chart": "basehub",
               "helm_chart_values_files": ["h.values.yaml", "broken.values.yaml"]}]}  # fmt: skip
    scenario.files["clusters/c1/cluster.yaml"] = yaml.safe_dump(cluster).encode()
    scenario.files["clusters/c1/broken.values.yaml"] = bad
    plaintext = {"binderhub-service": {"config": {"DockerRegistry": {"password": value}}}}
    scenario.files["clusters/c1/h.values.yaml"] = yaml.safe_dump(plaintext).encode()
    if draw(st.booleans()):
        scenario.args += ["--format", draw(st.sampled_from(["json", "table", "csv"]))]
    return scenario


@st.composite
def profile_scenario(draw: st.DrawFn) -> Scenario:
    scenario = Scenario(["profile", "--images-file", "{tmp}/images.yaml"])
    draw(file_entry(scenario, "images.yaml", bad=True))
    maybe(draw, scenario.args, "--hub", NAMES)
    maybe(draw, scenario.args, "--image", TEXT)
    if draw(st.booleans()):
        scenario.args += ["--values-file", draw(file_entry(scenario, "h.values.yaml", bad=draw(st.booleans())))]
    if draw(st.booleans()):
        scenario.args += ["--cluster-config", draw(file_entry(scenario, "cluster.yaml", bad=draw(st.booleans())))]
    if draw(st.booleans()):
        scenario.args.append("--dry-run")
    return scenario


@st.composite
def remove_scenario(draw: st.DrawFn, quay_url: str, hub_url: str) -> Scenario:
    kind = draw(st.sampled_from(["quay", "dockerhub"]))
    if kind == "quay":
        scenario = Scenario(["remove", "quay", "--org", draw(NAMES), "--hub", draw(NAMES)])
        maybe(draw, scenario.args, "--robot", NAMES)
        url, env_var = quay_url, "QUAY_TOKEN"
    else:
        scenario = Scenario(["remove", "dockerhub", "--namespace", draw(NAMES), "--hub", draw(NAMES)])
        maybe(draw, scenario.args, "--token-label", TEXT)
        scenario.env["DOCKERHUB_USERNAME"] = "alice"
        url, env_var = hub_url, "DOCKERHUB_TOKEN"
    maybe(draw, scenario.args, "--cluster", NAMES)
    scenario.args += ["--api-url", draw(st.one_of(st.just(url), URLS))]
    draw(token_into(scenario, env_var))
    for option, name in (("--values-file", "h.values.yaml"), ("--secret-file", "enc-h.secret.values.yaml"),
                         ("--cluster-config", "cluster.yaml")):  # fmt: skip
        if draw(st.booleans()):
            scenario.args += [option, draw(file_entry(scenario, name, bad=draw(st.booleans())))]
    for flag in ("--yes", "--dry-run", "--debug"):
        if draw(st.booleans()):
            scenario.args.append(flag)
    return scenario


# --- running a scenario ------------------------------------------------------------------------------------------


@contextmanager
def folder() -> Iterator[Path]:
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="provision-prop-") as name:
        os.chdir(name)
        try:
            yield Path(name)
        finally:
            os.chdir(cwd)


def snapshot(root: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return found


def check(scenario: Scenario) -> None:
    with folder() as tmp:
        for name, content in scenario.files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content is DIR:
                path.mkdir(exist_ok=True)
            else:
                assert isinstance(content, bytes)
                path.write_bytes(content)
        before = snapshot(tmp)
        args = [a.replace("{tmp}", str(tmp)) for a in scenario.args]
        env = {"QUAY_TOKEN": "", "DOCKERHUB_TOKEN": "", "DOCKERHUB_USERNAME": "", "SOPS_BIN": "", **scenario.env}
        result = runner.invoke(app, args, env=env, input=scenario.stdin)
        output = result.stdout + result.stderr
        # CliRunner catches what escapes the command; in a real process that would have been a traceback.
        escaped = result.exception if not isinstance(result.exception, SystemExit) else None
        assert escaped is None, f"{type(escaped).__name__} escaped: {escaped!r}"
        assert result.exit_code in (1, 2), f"exit {result.exit_code}: {output[-2000:]}"
        if "--debug" not in args:  # --debug asks for the traceback (redacted, like everything else)
            assert "Traceback" not in output, output[-3000:]
        for piece in scenario.secrets:
            if len(piece) >= 4:
                assert piece not in output, f"secret {piece!r} printed: {output[-2000:]}"
        assert snapshot(tmp) == before, "a file changed"


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def quay_url() -> Iterator[str]:
    with FakeQuay() as server:
        server.add_user("alice")  # no token at all: every token is refused
        yield server.url


@pytest.fixture(scope="module")
def hub_url() -> Iterator[str]:
    with FakeDockerHub() as server:
        server.add_user("alice", password="the-real-password-1")
        yield server.url


def run_property(strategy: st.SearchStrategy[Scenario]) -> None:
    @SETTINGS
    @given(strategy)
    def prop(scenario: Scenario) -> None:
        check(scenario)

    prop()


BUILDERS: dict[str, Callable[[dict[str, str]], st.SearchStrategy[Scenario]]] = {
    "quay": lambda urls: quay_scenario(urls["quay"]),
    "dockerhub": lambda urls: dockerhub_scenario(urls["hub"]),
    "gcp": lambda urls: gcp_scenario(),
    "verify": lambda urls: verify_scenario(urls["quay"]),
    "doctor": lambda urls: doctor_scenario(),
    "profile": lambda urls: profile_scenario(),
    "remove": lambda urls: remove_scenario(urls["quay"], urls["hub"]),
}


@pytest.mark.parametrize("command", list(BUILDERS))
def test_bad_input_fails_cleanly(command: str, quay_url: str, hub_url: str, caplog: Any) -> None:
    run_property(BUILDERS[command]({"quay": quay_url, "hub": hub_url}))
