// The nodes against a live podrelay (started by tests/test_n8n_node.py, which sets the env).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { makeContext } = require('./support/context');
const { Podrelay } = require('../dist/nodes/Podrelay/Podrelay.node');
const { PodrelayTrigger } = require('../dist/nodes/PodrelayTrigger/PodrelayTrigger.node');

const baseUrl = process.env.PODRELAY_BASE_URL;
const apiKey = process.env.PODRELAY_API_KEY;
const live = { skip: !baseUrl && 'needs a live podrelay: run through tests/test_n8n_node.py' };

async function run(params) {
	return new Podrelay().execute.call(makeContext({ baseUrl, apiKey, params }));
}

test('Chat: create waits for the job and returns the completion', live, async () => {
	const [[item]] = await run({
		resource: 'Chat',
		operation: 'create',
		messages: { items: [{ role: 'user', content: 'Hello from n8n' }] },
		additionalFields: { temperature: 0.2 },
		waitForCompletion: true,
		maxWait: 60,
	});
	assert.equal(item.json.status, 'completed');
	assert.equal(item.json.result.choices[0].message.content, 'Echo: Hello from n8n');
});

test('Image: generate returns the images as binary data', live, async () => {
	const [[item]] = await run({ resource: 'Image', operation: 'generate', prompt: 'a lighthouse', additionalFields: { n: 2 }, waitForCompletion: true, maxWait: 60 });
	assert.equal(item.json.status, 'completed');
	assert.deepEqual(Object.keys(item.binary).sort(), ['data', 'data_1']);
	assert.equal(item.binary.data.mimeType, 'image/png');
	assert.ok(Buffer.from(item.binary.data.data, 'base64').subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])));
	assert.equal(item.json.result.data[0].b64_json, undefined, 'files are not duplicated in the JSON');
});

test('Image: upscale sends the input binary and returns the upscaled binary', live, async () => {
	// The bytes tests/test_n8n_node.py looks for in the worker input the emulator received.
	const picture = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('n8n-binary-input')]);
	const items = [{ json: {}, binary: { photo: { data: picture.toString('base64'), mimeType: 'image/png', fileName: 'photo.png' } } }];
	const params = { resource: 'Image', operation: 'upscale', inputBinaryField: 'photo', additionalFields: { scale: 2 }, waitForCompletion: true, maxWait: 60 };
	const [[item]] = await new Podrelay().execute.call(makeContext({ baseUrl, apiKey, params, items }));
	assert.equal(item.json.status, 'completed');
	assert.equal(item.binary.data.mimeType, 'image/png');
	assert.ok(Buffer.from(item.binary.data.data, 'base64').subarray(0, 4).equals(picture.subarray(0, 4)));
});

test('without waiting, the enqueue object comes back', live, async () => {
	const [[item]] = await run({ resource: 'Embedding', operation: 'create', input: 'cold starts', additionalFields: {}, waitForCompletion: false });
	assert.equal(item.json.object, 'embedding.enqueue');
	assert.equal(item.json.status, 'queued');
});

test('an Idempotency Key makes a retried node run return the first job, not start a second', live, async () => {
	const params = { resource: 'Embedding', operation: 'create', input: 'same request', additionalFields: {}, waitForCompletion: false };
	const key = `n8n-e2e-${Date.now()}`;
	const [[first]] = await run({ ...params, idempotencyKey: key });
	const [[again]] = await run({ ...params, idempotencyKey: key });
	const [[other]] = await run(params);
	assert.equal(again.json.id, first.json.id);
	assert.notEqual(other.json.id, first.json.id);
});

test("podrelay's errors are NodeApiErrors, and Continue On Fail passes them on", live, async () => {
	const params = { resource: 'Chat', operation: 'create', messages: { items: [{ role: 'user', content: 'x' }] }, additionalFields: { temperature: 5 }, waitForCompletion: true, maxWait: 10 };
	await assert.rejects(run(params), (error) => {
		assert.equal(error.constructor.name, 'NodeApiError');
		assert.match(error.message, /temperature/);
		assert.equal(error.httpCode, '400');
		return true;
	});
	const [[item]] = await run({ ...params, continueOnFail: true });
	assert.match(item.json.error, /temperature/);
});

test('the trigger subscribes, verifies deliveries, and unsubscribes', live, async () => {
	const trigger = new PodrelayTrigger();
	const staticData = {};
	const received = [];
	// Stand in for n8n's webhook endpoint: hand each request to the trigger's webhook().
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (chunk) => chunks.push(chunk));
		req.on('end', async () => {
			const bytes = Buffer.concat(chunks);
			const response = { status: (code) => ({ send: (text) => res.writeHead(code).end(text) }) };
			// As n8n's body parser leaves it: the parsed body, and the raw bytes read on request.
			const request = { body: JSON.parse(bytes.toString() || '{}'), headers: req.headers };
			request.readRawBody = async () => {
				request.rawBody = bytes;
			};
			const answer = await trigger.webhook.call(makeContext({ staticData, request, response }));
			if (!answer.noWebhookResponse) {
				received.push(answer.workflowData[0][0].json);
				res.writeHead(200).end('ok');
			}
		});
	});
	await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
	const webhookUrl = `http://127.0.0.1:${server.address().port}/webhook`;
	const hooks = makeContext({ baseUrl, apiKey, staticData, webhookUrl, params: { events: ['job.completed'], surfaces: [] } });
	try {
		assert.equal(await trigger.webhookMethods.default.checkExists.call(hooks), false);
		assert.equal(await trigger.webhookMethods.default.create.call(hooks), true);
		assert.match(staticData.webhookId, /^we_/);
		assert.match(staticData.webhookSecret, /^whsec_/);
		assert.equal(await trigger.webhookMethods.default.checkExists.call(hooks), true);

		const forged = await fetch(webhookUrl, { method: 'POST', body: '{"type":"job.completed"}', headers: { 'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' } });
		assert.equal(forged.status, 401);

		// Non-ASCII text: it verifies only against the bytes podrelay sent, not a re-encoding of them.
		const messages = { items: [{ role: 'user', content: 'Grüße aus Köln 🌍' }] };
		const [[job]] = await run({ resource: 'Chat', operation: 'create', messages, additionalFields: {}, waitForCompletion: true, maxWait: 60 });
		// Earlier tests' jobs may complete now too: find this job's event.
		const mine = () => received.find((event) => event.data.id === job.json.id);
		for (let i = 0; i < 100 && !mine(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
		assert.equal(mine().type, 'job.completed');
		assert.equal(mine().data.result.choices[0].message.content, 'Echo: Grüße aus Köln 🌍');
		assert.ok(received.every((event) => event.type === 'job.completed'), 'only the chosen event type');

		const id = staticData.webhookId;
		assert.equal(await trigger.webhookMethods.default.delete.call(hooks), true);
		assert.equal(staticData.webhookId, undefined);
		const gone = await fetch(`${baseUrl}/v1/webhooks/${id}`, { headers: { Authorization: `Bearer ${apiKey}` } });
		assert.equal(gone.status, 404);
	} finally {
		server.close();
	}
});
