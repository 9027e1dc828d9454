"""The emulator's stand-ins for RunPod's worker SDK answer as the real SDK does.

`emulator/validator.py` is checked against runpod-python's own `rp_validator.validate`,
and `emulator/serverless.py` against its `run_job` and `run_job_generator` (with
`handle_job`'s aggregation), on the same inputs: the real package, installed from PyPI.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from runpod.serverless.modules.rp_job import run_job, run_job_generator
from runpod.serverless.utils.rp_validator import validate as real_validate

from emulator import serverless
from emulator.validator import validate
from emulator.workers import bark, esrgan, faster_whisper, sdxl, sdxl_turbo


def _schemas():
    yield faster_whisper._schema()
    yield sdxl._schema()
    yield sdxl_turbo._schema("1.1")
    yield sdxl_turbo._schema("1.0")
    yield esrgan._schema()
    yield {"text_prompt": {"type": str, "required": True}, "voice_preset": {"type": str, "required": False, "default": "x"}}


INPUTS = [
    {},
    {"prompt": "a cat"},
    {"prompt": "a cat", "num_images": 2, "width": 512, "height": 512},
    {"prompt": "a cat", "num_images": 3},
    {"prompt": "a cat", "num_images": 0, "guidance_scale": 3},
    {"prompt": "a cat", "guidance_scale": "high"},
    {"prompt": "a cat", "bogus": 1},
    {"prompt": 7},
    {"audio": "https://x/a.mp3", "temperature": 1, "best_of": 2.5},
    {"audio": "https://x/a.mp3", "word_timestamps": 1, "model": "large-v3"},
    {"audio_base64": "AAAA", "language": None},
    {"data_url": "https://x/i.png", "scale": 2, "model": "RealESRGAN_x2plus"},
    {"data_url": "https://x/i.png", "scale": 20, "output_type": "tar"},
    {"text_prompt": "hello", "voice_preset": "v2/en_speaker_3"},
    {"text_prompt": "hello", "speed": 2},
    {"prompt": "a cat", "seed": True, "num_images": True},
]


def _answer(check, raw: dict, schema: dict):
    try:
        return check(dict(raw), schema)
    except Exception as error:  # a constraint run on a value of another type raises, in both
        return type(error)


@pytest.mark.parametrize("index", range(len(INPUTS)))
def test_validator_answers_as_runpods_rp_validator(index):
    for schema_a, schema_b in zip(_schemas(), _schemas(), strict=True):
        raw = INPUTS[index]
        assert _answer(validate, raw, schema_a) == _answer(real_validate, raw, schema_b), (raw, list(schema_a))


def _real(handler, job: dict, aggregate: bool) -> dict:
    """What runpod-python's worker would send as the job's result (`handle_job` without the HTTP)."""

    async def go():
        if serverless.inspect.isgeneratorfunction(handler):
            result = {"output": []}
            async for piece in run_job_generator(handler, job):
                if isinstance(piece.get("output"), dict) and piece["output"].get("error"):
                    piece = {"error": str(piece["output"]["error"])}
                if piece.get("error"):
                    return piece
                if aggregate:
                    result["output"].append(piece["output"])
            return result
        return await run_job(handler, job)

    return asyncio.run(go())


def plain_ok(job):
    return {"images": ["x"], "seed": 3}


def plain_error(job):
    return {"error": ["Unexpected input. bogus is not a valid input option."]}


def plain_error_with_output(job):
    return {"error": "Job processing failed", "details": ["node 3 failed"], "refresh_worker": True}


def plain_list(job):
    return ["https://bucket/a.png"]


def plain_raises(job):
    raise KeyError("validated_input")


def gen_ok(job):
    yield "data: {}\n\n"
    yield {"choices": [{"tokens": ["hi"]}]}


def gen_error_object(job):
    yield "first"
    yield {"error": {"message": "vLLM returned HTTP 404", "type": "worker_error", "code": None}}


def gen_raises(job):
    yield "first"
    raise RuntimeError("CUDA out of memory")


@pytest.mark.parametrize(
    "handler", [plain_ok, plain_error, plain_error_with_output, plain_list, plain_raises, gen_ok, gen_error_object, gen_raises]
)
@pytest.mark.parametrize("aggregate", [True, False])
def test_serverless_rules_answer_as_runpods_worker_sdk(handler, aggregate):
    job = {"id": "job-1", "input": {}}
    real = _real(handler, job, aggregate)
    ours = serverless.run(handler, job, aggregate)
    if "error" in real:
        assert ours.status == "FAILED"
        if handler is plain_raises:  # a JSON object whose traceback and hosts differ by machine
            assert json.loads(ours.error)["error_message"] == json.loads(real["error"])["error_message"]
            assert json.loads(ours.error)["error_type"] == json.loads(real["error"])["error_type"]
        elif handler is gen_raises:
            assert ours.error.split("\n")[0] == real["error"].split("\n")[0]
        else:
            assert ours.error == real["error"]
    else:
        assert ours.status == "COMPLETED"
        assert ours.output == real.get("output")


def test_workers_refuse_what_their_schemas_refuse():
    env = type("Env", (), {"version": "latest", "upload": None, "fetch": None})()
    answer = serverless.run(bark.make_handler(env), {"id": "j", "input": {"text_prompt": "hi", "speed": 2}})
    assert answer.status == "FAILED" and answer.error == ["Unexpected input. speed is not a valid input option."]
    answer = serverless.run(esrgan.make_handler(env), {"id": "j", "input": {"scale": 2}})
    assert answer.status == "FAILED" and json.loads(answer.error)["error_type"] == "<class 'KeyError'>"


def test_emulator_keeps_runsync_results_a_minute_and_run_results_thirty(emulator):
    from emulator.state import Emulator

    state = Emulator(queue_time=0, run_time=0)
    sync_job = state.run("ep", {"input": "x"}, None, sync=True)
    async_job = state.run("ep", {"input": "x"}, None)
    assert sync_job.id.startswith("sync-") and async_job.id.endswith("-u1")
    for job in (sync_job, async_job):
        state.get("ep", job.id)  # brought up to date: COMPLETED
        job.finish_at -= 61  # as if it finished a minute ago
    assert state.get("ep", sync_job.id) is None  # runsync: kept 1 minute (RunPod's docs)
    assert state.get("ep", async_job.id).status == "COMPLETED"  # run: kept 30 minutes
