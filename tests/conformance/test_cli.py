"""``python -m conformance demo`` and ``serve``."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conformance.__main__ import main
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT

ROOT = Path(__file__).resolve().parents[2]


def test_demo_acquires_a_token_with_every_credential(capsys: pytest.CaptureFixture[str]) -> None:
    # In process, so the test-wide socket guard proves the demo only talks to loopback.
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = [
        line
        for line in out.splitlines()
        if "Credential" in line and ("client credentials" in line or "on-behalf-of" in line)
    ]
    for name in (
        "ClientSecretCredential",
        "aio.ClientSecretCredential",
        "CertificateCredential",
        "aio.CertificateCredential",
        "ClientAssertionCredential",
        "aio.ClientAssertionCredential",
        "OnBehalfOfCredential",
        "aio.OnBehalfOfCredential",
    ):
        mine = [row for row in rows if row.split()[0] == name]
        assert len(mine) == 3, (name, mine)
        first, cached, cae = mine
        assert "token for" in first
        assert re.search(r"\s0\s+served from cache", cached), cached
        assert "CAE token (cp1)" in cae
    assert re.search(r"wrong secret \(AADSTS7000215\)\s+1\s+ClientAuthenticationError", out)
    assert re.search(r"503, then 429, then success\s+3\s+token after 503 and 429", out)
    assert DEFAULT_SECRET not in out


def _read_environment(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    lines: dict[str, str] = {}
    for line in process.stdout:
        match = re.match(r"export (\w+)=(.*)", line.strip())
        if match:
            lines[match.group(1)] = match.group(2)
        if "AZURE_CLIENT_SECRET" in lines:
            break
    return lines


def test_serve_prints_the_environment_and_answers_discovery() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "conformance", "serve"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            lines = _read_environment(process)
            url = lines["AZURE_AUTHORITY_HOST"]
            assert re.fullmatch(r"https://127\.0\.0\.1:\d+", url)
            assert lines["AZURE_TENANT_ID"] == DEFAULT_TENANT
            assert lines["AZURE_CLIENT_ID"] == DEFAULT_CLIENT_ID
            assert Path(lines["SSL_CERT_FILE"]).is_file()
            assert lines["REQUESTS_CA_BUNDLE"] == lines["SSL_CERT_FILE"]
            context = ssl.create_default_context(cafile=lines["SSL_CERT_FILE"])
            with httpx.Client(verify=context) as client:
                response = client.get(f"{url}/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
            assert response.status_code == 200
            assert response.json()["token_endpoint"] == f"{url}/{DEFAULT_TENANT}/oauth2/v2.0/token"
        finally:
            process.terminate()
            process.communicate(timeout=10)
