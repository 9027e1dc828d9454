"""The further surfaces of the registry: speech, video, audio-to-video, music, image edit,
upscale, background removal; and prices and models for every surface."""

from __future__ import annotations

import pytest

from app import create_app
from integration.accounts.keys import create_key
from integration.resources import of
from integration.surfaces import SURFACES
from tests.support import make_settings

PNG = "data:image/png;base64,iVBORw0KGgo="
MEDIA = {
    "speech": ("/audio/speech", {"input": "Hello from podrelay", "voice": "af_bella"}, "audio/wav"),
    "video": ("/videos/generations", {"prompt": "waves at dusk", "duration": 2}, "video/mp4"),
    "audio_video": ("/videos/audio-to-video", {"audioUrl": "https://cdn.example.com/v.mp3", "image": PNG}, "video/mp4"),
    "music": ("/audio/music", {"prompt": "lo-fi beat", "duration": 10}, "audio/wav"),
    "image_edit": ("/images/edits", {"image": PNG, "prompt": "make it night"}, "image/png"),
    "upscale": ("/images/upscale", {"image": "https://cdn.example.com/small.png", "scale": 2}, "image/png"),
    "background_removal": ("/images/background-removal", {"image": PNG}, "image/png"),
}


@pytest.mark.parametrize("surface", sorted(MEDIA))
def test_media_surface_completes_with_a_downloadable_file(make_stack, surface):
    stack = make_stack()
    route, body, media_type = MEDIA[surface]
    answer = stack.enqueue(route, body)
    assert answer["surface"] == surface and answer["model"] == SURFACES[surface].default_model
    job = stack.wait_final([answer["id"]])[answer["id"]]
    assert job["status"] == "completed", job
    assert job["result"]["data"] and "url" in job["result"]["data"][0]
    download = stack.http.get(f"{stack.base_url}/v1/jobs/{job['id']}/download", timeout=5)
    assert download.status_code == 200 and download.headers["Content-Type"] == media_type


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("/audio/speech", {"input": ""}, "input"),
        ("/audio/speech", {"input": "x", "speed": 9}, "speed"),
        ("/videos/generations", {"prompt": "x", "duration": 60}, "duration"),
        ("/videos/generations", {"prompt": "x", "image": "ftp://x/y.png"}, "image"),
        ("/videos/audio-to-video", {}, "audioUrl"),
        ("/audio/music", {"prompt": "x", "duration": 0}, "duration"),
        ("/images/edits", {"prompt": "x"}, "image"),
        ("/images/upscale", {"image": PNG, "scale": 3}, "scale"),
        ("/images/background-removal", {"image": "not a url"}, "image"),
    ],
)
def test_media_surfaces_name_the_bad_field(client, auth, route, body, param):
    answer = client.post(f"/v1{route}", json=body, headers=auth)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["param"] == param


SAMPLES = {
    "chat": {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 100},
    "images": {"prompt": "x", "n": 2, "size": "1024x1024"},
    "transcribe": {"audioUrl": "https://cdn.example.com/a.mp3"},
    "embeddings": {"input": "x" * 4000},
    **{name: body for name, (_, body, _) in MEDIA.items()},
}


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_every_surface_has_a_price(client, auth, surface):
    assert surface in SAMPLES, f"add a sample request for the new surface {surface}"
    answer = client.post(f"/v1{SURFACES[surface].route}/price", json=SAMPLES[surface], headers=auth)
    assert answer.status_code == 200
    price = answer.get_json()
    assert price["object"] == "price" and price["surface"] == surface and price["currency"] == "USD"
    assert price["estimated_cost"] == pytest.approx(price["units"] * price["unit_price"], abs=1e-6)
    assert price["estimated_cost"] > 0


def test_prices_count_what_the_request_asks_for(client, auth):
    def cost(route, body):
        return client.post(f"/v1{route}/price", json=body, headers=auth).get_json()["estimated_cost"]

    assert cost("/images/generations", {"prompt": "x", "n": 4}) == pytest.approx(4 * cost("/images/generations", {"prompt": "x"}))
    assert cost("/videos/generations", {"prompt": "x", "duration": 10}) == pytest.approx(
        2 * cost("/videos/generations", {"prompt": "x", "duration": 5})
    )


def test_price_table_overrides_per_surface_and_model(redis_url, emulator):
    app = create_app(
        make_settings(redis_url, emulator.base_url, price_table='{"images": {"Ben2": 0.5, "*": 0.01}, "chat": 0.001}')
    )
    _, key = create_key(of(app).redis, "k")
    client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
    assert (
        client.post("/v1/images/generations/price", json={"prompt": "x", "model": "Ben2"}, headers=headers).get_json()[
            "unit_price"
        ]
        == 0.5
    )
    assert client.post("/v1/images/generations/price", json={"prompt": "x"}, headers=headers).get_json()["unit_price"] == 0.01
    job = client.post("/v1/images/generations", json={"prompt": "x", "n": 3}, headers=headers).get_json()
    assert client.get(f"/v1/jobs/{job['id']}", headers=headers).get_json()["cost"] == pytest.approx(0.03)


def test_price_of_a_bad_request_is_a_400(client, auth):
    answer = client.post("/v1/chat/completions/price", json={"messages": []}, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == "messages"


def test_models_are_grouped_by_surface_with_endpoint_state(client, auth):
    body = client.get("/v1/models", headers=auth).get_json()
    assert set(body["surfaces"]) == set(SURFACES)
    by_id = {m["id"]: m for m in body["data"]}
    assert by_id["Kokoro_82M"]["surface"] == "speech" and by_id["Kokoro_82M"]["route"] == "/v1/audio/speech"
    assert by_id["Llama3_8B_Instruct"]["default"] is True
    assert all(m["endpoint_configured"] for m in body["data"])  # the tests configure every surface
    assert client.get("/v1/models").status_code == 401
