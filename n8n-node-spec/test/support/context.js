// The parts of n8n's execution context that the podrelay nodes use, over real HTTP (fetch).
// Enough to run `execute`, the trigger's webhook methods and `webhook` against a live podrelay.

function makeContext({ baseUrl, apiKey, params = {}, items = [{ json: {} }], staticData = {}, webhookUrl, request, response }) {
	const helpers = {
		async httpRequestWithAuthentication(credentialType, options) {
			const url = new URL(options.url);
			for (const [key, value] of Object.entries(options.qs ?? {})) url.searchParams.set(key, String(value));
			const headers = { Authorization: `Bearer ${apiKey}`, ...(options.headers ?? {}) };
			let body;
			if (options.body !== undefined) {
				body = JSON.stringify(options.body);
				headers['Content-Type'] = 'application/json';
			}
			const answer = await fetch(url, { method: options.method, headers, body, redirect: 'manual' });
			const bytes = Buffer.from(await answer.arrayBuffer());
			let parsed = bytes;
			if (options.encoding !== 'arraybuffer') {
				try {
					parsed = JSON.parse(bytes.toString());
				} catch {
					parsed = bytes.toString();
				}
			}
			if (!options.ignoreHttpStatusErrors && answer.status >= 400) throw new Error(`HTTP ${answer.status}`);
			const full = { statusCode: answer.status, body: parsed, headers: Object.fromEntries(answer.headers) };
			return options.returnFullResponse ? full : parsed;
		},
		async prepareBinaryData(buffer, fileName, mimeType) {
			return { data: buffer.toString('base64'), fileName, mimeType, fileSize: String(buffer.length) };
		},
		assertBinaryData(item, name) {
			const file = items[item]?.binary?.[name];
			if (!file) throw new Error(`item ${item} has no binary property ${name}`);
			return file;
		},
		async getBinaryDataBuffer(item, name) {
			return Buffer.from(helpers.assertBinaryData(item, name).data, 'base64');
		},
		returnJsonArray(data) {
			return (Array.isArray(data) ? data : [data]).map((json) => ({ json }));
		},
	};
	return {
		helpers,
		getInputData: () => items,
		getNodeParameter(name, item, fallback) {
			if (name in params) return params[name];
			if (fallback !== undefined) return fallback;
			throw new Error(`no parameter ${name}`);
		},
		getCredentials: async () => ({ baseUrl, apiKey }),
		getNode: () => ({ id: 'n1', name: 'podrelay', type: 'n8n-nodes-podrelay.podrelay', typeVersion: 1, position: [0, 0], parameters: params }),
		continueOnFail: () => params.continueOnFail === true,
		getWorkflowStaticData: () => staticData,
		getNodeWebhookUrl: () => webhookUrl,
		getWorkflow: () => ({ id: 'wf-1' }),
		getRequestObject: () => request,
		getResponseObject: () => response,
	};
}

module.exports = { makeContext };
