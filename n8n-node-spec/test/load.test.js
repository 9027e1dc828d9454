// The built package loads as n8n loads it: require the files package.json names, `new` the classes.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const spec = require(path.join(root, 'spec.json'));

function load(file) {
	const exported = require(path.join(root, file));
	const classes = Object.values(exported).filter((value) => typeof value === 'function');
	assert.equal(classes.length, 1, `${file} exports one class`);
	return new classes[0]();
}

test('package.json follows the community node conventions', () => {
	assert.ok(pkg.name.startsWith('n8n-nodes-'));
	assert.ok(pkg.keywords.includes('n8n-community-node-package'));
	assert.equal(pkg.n8n.n8nNodesApiVersion, 1);
	assert.deepEqual(Object.keys(pkg.peerDependencies), ['n8n-workflow']);
	assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
	for (const file of [...pkg.n8n.credentials, ...pkg.n8n.nodes]) assert.ok(fs.existsSync(path.join(root, file)), `${file} is built`);
});

test('the credential authenticates with a Bearer key and tests with GET /v1/models', () => {
	const credential = load(pkg.n8n.credentials[0]);
	assert.equal(credential.name, 'podrelayApi');
	assert.deepEqual(credential.properties.map((p) => p.name), ['baseUrl', 'apiKey']);
	assert.equal(credential.properties[1].typeOptions.password, true);
	assert.equal(credential.authenticate.properties.headers.Authorization, '=Bearer {{$credentials.apiKey}}');
	assert.equal(credential.test.request.url, '/v1/models');
});

function checkProperty(property, where) {
	assert.ok(property.displayName, `${where}: displayName`);
	assert.ok(property.name, `${where}: name`);
	assert.ok(property.type, `${where}: type`);
	assert.notEqual(property.default, undefined, `${where}.${property.name}: default`);
	if (property.type === 'options' || property.type === 'multiOptions') {
		assert.ok(Array.isArray(property.options) && property.options.length, `${where}.${property.name}: options`);
	}
	for (const option of property.options ?? []) {
		if (option.type) checkProperty(option, `${where}.${property.name}`);
		for (const value of option.values ?? []) checkProperty(value, `${where}.${property.name}.${option.name}`);
	}
}

for (const file of pkg.n8n.nodes) {
	test(`${path.basename(file)} has a valid description`, () => {
		const node = load(file);
		const d = node.description;
		assert.ok(d.name && d.displayName && d.version && d.defaults.name);
		assert.equal(d.icon, 'file:podrelay.svg');
		assert.ok(fs.existsSync(path.join(root, path.dirname(file), 'podrelay.svg')), 'icon next to the node');
		assert.deepEqual(d.credentials, [{ name: 'podrelayApi', required: true }]);
		for (const property of d.properties) checkProperty(property, d.name);
	});
}

test('every surface of the spec is a resource with its operation and required fields', () => {
	const node = load(pkg.n8n.nodes[0]);
	const properties = node.description.properties;
	const resources = properties.find((p) => p.name === 'resource').options.map((o) => o.value);
	for (const action of spec.actions) {
		assert.ok(resources.includes(action.resource), `resource ${action.resource}`);
		const operations = properties.find((p) => p.name === 'operation' && p.displayOptions.show.resource[0] === action.resource);
		assert.ok(operations.options.some((o) => o.value === action.operation), `${action.resource}: ${action.operation}`);
		for (const field of (action.fields ?? []).filter((f) => f.required)) {
			const found = properties.find(
				(p) => p.name === field.name && p.displayOptions.show.resource[0] === action.resource && p.displayOptions.show.operation[0] === action.operation,
			);
			// The field an input binary property can fill is in the form but not required there.
			const required = field.name !== action.binaryInput;
			assert.ok(found && Boolean(found.required) === required, `${action.resource} ${action.operation}: ${field.name}`);
		}
		if (action.binaryInput) {
			const binary = properties.find(
				(p) => p.name === 'inputBinaryField' && p.displayOptions.show.resource[0] === action.resource && p.displayOptions.show.operation[0] === action.operation,
			);
			assert.ok(binary, `${action.resource} ${action.operation}: Input Binary Field`);
		}
	}
	assert.ok(typeof node.execute === 'function');
});

test('the trigger registers, checks and deletes its subscription and handles webhooks', () => {
	const trigger = load(pkg.n8n.nodes[1]);
	assert.deepEqual(Object.keys(trigger.webhookMethods.default).sort(), ['checkExists', 'create', 'delete']);
	assert.equal(typeof trigger.webhook, 'function');
	const events = trigger.description.properties.find((p) => p.name === 'events');
	assert.deepEqual(events.options.map((o) => o.value), spec.events);
});
