"""The Python side of benches/serve_load.sh: the same MNIST MLP served by FastAPI + PyTorch
under gunicorn with uvicorn workers, with Lepton's request and answer shapes, as a Python team
would write it.

    LEPTON_MANIFEST=REGISTRY/mnist-mlp/v1/manifest.json WEB_CONCURRENCY=2 gunicorn \
        --chdir benches -k uvicorn.workers.UvicornWorker -w 2 -b 127.0.0.1:8200 serve_fastapi:app

The network is built from the Lepton artifact's manifest (input width, hidden width, depth,
activation, classes), so it has the same layers and the same arithmetic per request; its
weights are PyTorch's initial ones (throughput does not depend on the weight values; burn's
weight file is not read here). Each worker uses cores / workers threads.
"""

import json
import os

import torch
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

manifest = json.load(open(os.environ["LEPTON_MANIFEST"]))
stored = manifest["model_config"]
config = stored["config"]
width = stored["n_features"]
classes = manifest["input_schema"]["task"]["classes"]
activation = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}[
    config.get("activation", "relu")
]

layers, inputs = [], width
for _ in range(config["depth"]):
    layers += [torch.nn.Linear(inputs, config["hidden_width"]), activation()]
    inputs = config["hidden_width"]
layers.append(torch.nn.Linear(inputs, len(classes)))
net = torch.nn.Sequential(*layers).eval()
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

app = FastAPI()


class Rows(BaseModel):
    rows: list[list[float]]


@app.post("/v1/models/{name}/predict")
def predict(name: str, request: Rows):
    if any(len(r) != width for r in request.rows) or not request.rows:
        return JSONResponse(
            status_code=422,
            content={"error": {"code": "invalid_input", "message": f"rows need {width} values"}},
        )
    with torch.inference_mode():
        p = torch.softmax(net(torch.tensor(request.rows, dtype=torch.float32)), dim=1)
    index = p.argmax(dim=1).tolist()
    return {
        "model": name,
        "version": 1,
        "predictions": [
            {"label": classes[i], "class": i, "probabilities": row}
            for i, row in zip(index, p.tolist())
        ],
    }


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
