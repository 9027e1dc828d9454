"""OpenAI's Responses API with the official `openai` SDK: held, background, streamed, cancelled,
refused; and the mapping of its shapes to a chat job and back."""

from __future__ import annotations

import json

import openai
import pytest
import requests
from openai import OpenAI

from integration.accounts.keys import create_key
from integration.surfaces import responses as shapes
from tests.support import wait_until


def client_for(stack) -> OpenAI:
    return OpenAI(api_key=stack.key, base_url=f"{stack.base_url}/openai/v1", timeout=60, max_retries=0)


def test_a_response_is_a_tracked_chat_job_in_openais_shape(make_stack, emulator):
    stack = make_stack()
    client = client_for(stack)
    response = client.responses.create(
        model="gpt-4o-mini", instructions="Be brief.", input="Hello from the SDK", max_output_tokens=64
    )
    assert response.object == "response" and response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == "Echo: Hello from the SDK"
    assert response.output[0].type == "message" and response.output[0].content[0].type == "output_text"
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief." and response.max_output_tokens == 64
    job = stack.job(shapes.job_id_of(response.id))
    assert job["surface"] == "chat" and job["status"] == "completed"  # listed, webhooks fire: a job like any
    sent = emulator.jobs[job["runpod"]["id"]].input
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["sampling_params"]["max_tokens"] == 64
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.status == "completed"
    _, other = create_key(stack.redis, "other")
    foreign = requests.get(
        f"{stack.base_url}/openai/v1/responses/{response.id}", headers={"Authorization": f"Bearer {other}"}, timeout=10
    )
    assert foreign.status_code == 404


def test_message_items_with_content_parts_become_chat_messages(make_stack, emulator):
    stack = make_stack()
    items = [
        {"role": "developer", "content": "Answer in French."},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "first"}, {"type": "input_text", "text": "second"}],
        },
    ]
    response = client_for(stack).responses.create(model="gpt-4o-mini", input=items)
    assert response.status == "completed"
    sent = emulator.jobs[stack.job(shapes.job_id_of(response.id))["runpod"]["id"]].input["messages"]
    assert sent == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
    ]


def test_background_answers_at_once_and_is_retrieved_or_cancelled(make_stack, slow_emulator):
    stack = make_stack(runpod_api_base=f"{slow_emulator(3.0).base_url}/v2")
    client = client_for(stack)
    queued = client.responses.create(model="gpt-4o-mini", input="later", background=True)
    assert queued.status == "queued" and queued.background is True and queued.output == []
    done = wait_until(lambda: (r := client.responses.retrieve(queued.id)).status == "completed" and r, timeout=60)
    assert done.output_text == "Echo: later"
    other = client.responses.create(model="gpt-4o-mini", input="never mind", background=True)
    cancelled = client.responses.cancel(other.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.responses.cancel(other.id)


def test_a_streamed_response_sends_the_responses_events(make_stack):
    stack = make_stack()
    events = list(client_for(stack).responses.create(model="gpt-4o-mini", input="stream me please", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-1] == "response.completed" and "response.output_text.done" in kinds
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Echo: stream me please" == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0]"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({}, "input"),
    ],
)
def test_what_podrelay_cannot_do_is_a_400_naming_the_field(make_stack, body, param):
    stack = make_stack()
    answer = stack.http.post(f"{stack.base_url}/openai/v1/responses", json=body, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text


def test_tools_tool_choice_and_text_format_map_to_chat_fields_and_tool_calls_map_back():
    request = {
        "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": True}],
        "tool_choice": {"type": "function", "name": "weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    }
    chat = shapes.chat_request(request)
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}],
    }
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "cold"}
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}, "strict": True}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
    completion = {
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        ]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }  # fmt: skip
    job = {"id": "j", "status": "completed", "created": 1, "model": "m", "result": completion, "finished": 2}
    shown = shapes.response_object(job, shapes.echo(request))
    assert shown["output"] == [
        {
            "type": "function_call",
            "id": "fc_call_2",
            "call_id": "call_2",
            "name": "weather",
            "arguments": "{}",
            "status": "completed",
        }
    ]
    assert shown["usage"]["input_tokens"] == 5 and shown["tools"] == request["tools"]


WEATHER = [{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}}]


@pytest.fixture(params=["worker-vllm@2.25", "worker-vllm@2.23"])
def on_vllm(request, make_stack, emulator):
    """A stack whose chat endpoint runs the emulated worker-vllm (its OpenAI route)."""
    endpoint = "ep-chat-" + request.param.replace("@", "-").replace(".", "-")
    emulator.workers[endpoint] = request.param
    return make_stack(endpoints={"CHAT": endpoint}, runpod_workers={"CHAT": "worker-vllm"})


def test_on_worker_vllm_a_function_tool_round_trip(on_vllm):
    client = client_for(on_vllm)
    asked = "What is the weather in Paris"
    called = client.responses.create(model="gpt-4o-mini", input=asked, tools=WEATHER)
    assert called.status == "completed" and called.model == "meta-llama/Meta-Llama-3-8B-Instruct"
    [call] = called.output
    assert call.type == "function_call" and call.name == "weather" and call.call_id
    turn = [
        {"role": "user", "content": asked},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "12 degrees and rain"},
    ]
    answered = client.responses.create(model="gpt-4o-mini", input=turn, tools=WEATHER)
    assert answered.output_text == "Echo: 12 degrees and rain"
    assert [o.type for o in answered.output] == ["message"]


def test_on_worker_vllm_streamed_text_and_tool_calls_add_up_in_the_sdks_stream_helper(on_vllm):
    client = client_for(on_vllm)
    with client.responses.stream(model="gpt-4o-mini", input="stream this answer") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "Echo: stream this answer" and kinds.count("response.output_text.delta") >= 2
    with client.responses.stream(model="gpt-4o-mini", input="weather in Paris?", tools=WEATHER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["function_call"]  # no empty message item before it
    assert final.output[0].name == "weather" and "response.function_call_arguments.done" in kinds
    assert json.loads(final.output[0].arguments) == {"query": "weather in Paris?"}


def test_on_worker_vllm_background_then_retrieve_and_max_output_tokens(on_vllm):
    client = client_for(on_vllm)
    queued = client.responses.create(model="gpt-4o-mini", input="one two three four five", background=True, max_output_tokens=3)
    assert queued.status == "queued"
    done = wait_until(
        lambda: (r := client.responses.retrieve(queued.id)).status not in ("queued", "in_progress") and r, timeout=60
    )
    assert done.status == "incomplete" and done.incomplete_details.reason == "max_output_tokens"
    assert done.output_text == "Echo: one two"
