// The trigger's signature check against the Standard Webhooks reference implementation.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Webhook } = require('standardwebhooks');
const { verifyDelivery } = require('../dist/nodes/PodrelayTrigger/signature');

const secret = 'whsec_' + crypto.randomBytes(32).toString('base64');
const body = JSON.stringify({ type: 'job.completed', timestamp: new Date().toISOString(), data: { id: 'job-1' } });

function signed(payload, when = new Date(), key = secret, id = 'msg_1') {
	return {
		'webhook-id': id,
		'webhook-timestamp': String(Math.floor(when.getTime() / 1000)),
		'webhook-signature': new Webhook(key).sign(id, when, payload),
	};
}

test('accepts a delivery signed by the reference implementation', () => {
	assert.equal(verifyDelivery(secret, Buffer.from(body), signed(body)), true);
});

test('accepts any of several signatures (a secret rotation)', () => {
	const other = 'whsec_' + crypto.randomBytes(32).toString('base64');
	const headers = signed(body);
	headers['webhook-signature'] = `${signed(body, new Date(), other)['webhook-signature']} ${headers['webhook-signature']}`;
	assert.equal(verifyDelivery(secret, body, headers), true);
});

test('refuses a tampered body', () => {
	assert.equal(verifyDelivery(secret, body.replace('job-1', 'job-2'), signed(body)), false);
});

test('refuses a wrong secret', () => {
	const other = 'whsec_' + crypto.randomBytes(32).toString('base64');
	assert.equal(verifyDelivery(other, body, signed(body)), false);
});

test('refuses a stale or future timestamp (5-minute tolerance)', () => {
	assert.equal(verifyDelivery(secret, body, signed(body, new Date(Date.now() - 6 * 60 * 1000))), false);
	assert.equal(verifyDelivery(secret, body, signed(body, new Date(Date.now() + 6 * 60 * 1000))), false);
	assert.equal(verifyDelivery(secret, body, signed(body, new Date(Date.now() - 4 * 60 * 1000))), true);
});

test('refuses missing headers and a changed id', () => {
	assert.equal(verifyDelivery(secret, body, {}), false);
	assert.equal(verifyDelivery(secret, body, { ...signed(body), 'webhook-id': 'msg_2' }), false);
});
