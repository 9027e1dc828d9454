import type {
	IBinaryKeyData,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { type SpecAction, type SpecField, findAction, finalStatuses, properties } from './description';

const WAIT_ROUND = 25; // seconds per Prefer: wait round: under a 30 s router (Heroku) or proxy

interface PodrelayResponse {
	statusCode: number;
	body: IDataObject;
	headers: IDataObject;
}

async function call(
	this: IExecuteFunctions,
	method: IHttpRequestMethods,
	path: string,
	options: Partial<IHttpRequestOptions> = {},
): Promise<PodrelayResponse> {
	const credentials = await this.getCredentials('podrelayApi');
	const baseUrl = String(credentials.baseUrl).replace(/\/$/, '');
	const response = (await this.helpers.httpRequestWithAuthentication.call(this, 'podrelayApi', {
		method,
		url: `${baseUrl}${path}`,
		json: true,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		...options,
	})) as PodrelayResponse;
	if (response.statusCode >= 400) {
		const error = ((response.body as IDataObject)?.error ?? {}) as IDataObject;
		throw new NodeApiError(this.getNode(), (response.body ?? {}) as JsonObject, {
			message: String(error.message ?? `podrelay answered HTTP ${response.statusCode}`),
			description: error.code ? `code: ${error.code}${error.param ? `, param: ${error.param}` : ''}` : undefined,
			httpCode: String(response.statusCode),
		});
	}
	return response;
}

async function body(this: IExecuteFunctions, action: SpecAction, item: number): Promise<IDataObject> {
	const out: IDataObject = {};
	const additional = this.getNodeParameter('additionalFields', item, {}) as IDataObject;
	for (const field of action.fields ?? []) {
		const value = field.required ? this.getNodeParameter(field.name, item, '') : additional[field.name];
		if (value === undefined || value === '') continue;
		out[field.name] = convert(field, value) as IDataObject[string];
	}
	const binaryField = action.binaryInput ? String(this.getNodeParameter('inputBinaryField', item, '') ?? '').trim() : '';
	if (action.binaryInput && binaryField) {
		// The item's file as a data URI: podrelay keeps a small one inline and stores a large one for the worker to fetch.
		const file = this.helpers.assertBinaryData(item, binaryField);
		const buffer = await this.helpers.getBinaryDataBuffer(item, binaryField);
		out[action.binaryInput] = `data:${file.mimeType || 'application/octet-stream'};base64,${buffer.toString('base64')}`;
	}
	return out;
}

function convert(field: SpecField, value: unknown): unknown {
	if (field.type === 'collection') return ((value as IDataObject).items as IDataObject[] | undefined) ?? [];
	if (['json', 'list', 'object'].includes(field.type) && typeof value === 'string') {
		try {
			return JSON.parse(value);
		} catch {
			return value;
		}
	}
	return value;
}

async function waitForJob(this: IExecuteFunctions, jobId: string, deadline: number): Promise<IDataObject> {
	let delay = 1000;
	for (;;) {
		const job = (await call.call(this, 'GET', `/v1/jobs/${jobId}`)).body;
		if (finalStatuses.includes(String(job.status))) return job;
		if (Date.now() + delay > deadline) {
			throw new NodeOperationError(this.getNode(), `Job ${jobId} did not finish in time (status: ${job.status})`);
		}
		await new Promise((resolve) => setTimeout(resolve, delay));
		delay = Math.min(delay * 2, 10_000);
	}
}

async function files(this: IExecuteFunctions, job: IDataObject, item: number): Promise<IBinaryKeyData> {
	const result = (job.result ?? {}) as IDataObject;
	const count = Array.isArray(result.data) ? result.data.length : 0;
	const binary: IBinaryKeyData = {};
	for (let index = 0; index < count; index++) {
		const response = await call.call(this, 'GET', `/v1/jobs/${job.id}/download`, {
			qs: { index },
			json: false,
			encoding: 'arraybuffer',
		});
		const mimeType = String(response.headers['content-type'] ?? 'application/octet-stream').split(';')[0];
		const extension = mimeType.split('/')[1]?.replace('jpeg', 'jpg').replace('mpeg', 'mp3') ?? 'bin';
		const buffer = Buffer.from(response.body as unknown as ArrayBuffer);
		binary[index === 0 ? 'data' : `data_${index}`] = await this.helpers.prepareBinaryData(buffer, `${job.id}-${index}.${extension}`, mimeType);
	}
	void item;
	return binary;
}

function withoutInlineFiles(job: IDataObject): IDataObject {
	const result = job.result as IDataObject | undefined;
	if (!result || !Array.isArray(result.data)) return job;
	const data = (result.data as IDataObject[]).map((file) => ('b64_json' in file ? { ...file, b64_json: undefined } : file));
	return { ...job, result: { ...result, data } };
}

async function runAction(this: IExecuteFunctions, resource: string, operation: string, item: number): Promise<INodeExecutionData> {
	if (resource === 'Job') return runJobAction.call(this, operation, item);
	const action = findAction(resource, operation);
	const wait = this.getNodeParameter('waitForCompletion', item, true) as boolean;
	const maxWait = (this.getNodeParameter('maxWait', item, 600) as number) * 1000;
	const deadline = Date.now() + maxWait;
	const headers: IDataObject = wait ? { Prefer: `wait=${Math.max(1, Math.min(WAIT_ROUND, Math.floor(maxWait / 1000)))}` } : {};
	const idempotencyKey = String(this.getNodeParameter('idempotencyKey', item, '') ?? '').trim();
	if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
	const answer = await call.call(this, 'POST', action.route, { body: await body.call(this, action, item), headers });
	if (!wait) return { json: answer.body, pairedItem: { item } };
	const job = answer.statusCode === 200 ? answer.body : await waitForJob.call(this, String(answer.body.id), deadline);
	if (job.status !== 'completed') {
		const error = (job.error ?? {}) as IDataObject;
		throw new NodeOperationError(this.getNode(), `Job ${job.id} ended ${job.status}: ${error.message ?? 'no reason given'}`, {
			itemIndex: item,
		});
	}
	if (action.binaryOutput) {
		return { json: withoutInlineFiles(job), binary: await files.call(this, job, item), pairedItem: { item } };
	}
	return { json: job, pairedItem: { item } };
}

async function runJobAction(this: IExecuteFunctions, operation: string, item: number): Promise<INodeExecutionData> {
	if (operation === 'list') {
		const filters = this.getNodeParameter('filters', item, {}) as IDataObject;
		return { json: (await call.call(this, 'GET', '/v1/jobs', { qs: filters })).body, pairedItem: { item } };
	}
	const jobId = encodeURIComponent(this.getNodeParameter('jobId', item) as string);
	if (operation === 'get') return { json: (await call.call(this, 'GET', `/v1/jobs/${jobId}`)).body, pairedItem: { item } };
	if (operation === 'cancel') return { json: (await call.call(this, 'POST', `/v1/jobs/${jobId}/cancel`)).body, pairedItem: { item } };
	const job = (await call.call(this, 'GET', `/v1/jobs/${jobId}`)).body;
	const index = this.getNodeParameter('index', item, 0) as number;
	const all = await files.call(this, job, item);
	const key = index === 0 ? 'data' : `data_${index}`;
	if (!all[key]) throw new NodeOperationError(this.getNode(), `Job ${job.id} has no file ${index}`, { itemIndex: item });
	return { json: withoutInlineFiles(job), binary: { data: all[key] }, pairedItem: { item } };
}

export class Podrelay implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'podrelay',
		name: 'podrelay',
		icon: 'file:podrelay.svg',
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Run inference jobs on RunPod through podrelay: chat, images, audio, video, embeddings',
		defaults: { name: 'podrelay' },
		// An AI Agent may call every operation as a tool: it reads each operation's description, and
		// gets file results as signed download links in the JSON (binary data stays for workflows).
		usableAsTool: true,
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ name: 'podrelayApi', required: true }],
		properties,
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		for (let item = 0; item < items.length; item++) {
			try {
				const resource = this.getNodeParameter('resource', item) as string;
				const operation = this.getNodeParameter('operation', item) as string;
				out.push(await runAction.call(this, resource, operation, item));
			} catch (error) {
				if (this.continueOnFail()) {
					out.push({ json: { error: (error as Error).message }, pairedItem: { item } });
					continue;
				}
				throw error;
			}
		}
		return [out];
	}
}
