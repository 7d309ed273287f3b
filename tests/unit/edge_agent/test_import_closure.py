"""The edge image installs only `.[edge]`: prove the agent never needs more."""

import subprocess
import sys

SCRIPT = r"""
import asyncio, sys, tempfile
from pathlib import Path
import httpx
from edgeloop_agent.api.app import create_app
from edgeloop_agent.settings import AgentSettings, ModelSettings, OutboxSettings, MqttSettings

tmp = Path(tempfile.mkdtemp())
settings = AgentSettings(
    model=ModelSettings(desired_model_path=tmp / "d.json", cache_dir=tmp / "c", bundle=sys.argv[1]),
    outbox=OutboxSettings(path=tmp / "o.sqlite"),
    mqtt=MqttSettings(enabled=True, port=1),
)
app = create_app(settings)

async def main():
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            assert (await client.get("/v2/health/ready")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200

asyncio.run(main())
heavy = {"kfp", "kubernetes", "mlflow", "evidently", "pandas", "xgboost", "sklearn", "edgeloop", "edgeloop_components"}
print(sorted(heavy & {m.split(".")[0] for m in sys.modules}))
"""


def test_starting_the_agent_loads_nothing_heavy(registry_with_champion):
    bundle = str(registry_with_champion["run"].bundle_dir)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, bundle],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
