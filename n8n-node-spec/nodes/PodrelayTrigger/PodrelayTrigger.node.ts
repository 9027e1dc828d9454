import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import spec from '../../spec.json';
import { verifyDelivery } from './signature';

async function podrelay(this: IHookFunctions, method: 'GET' | 'POST' | 'DELETE', path: string, body?: IDataObject) {
	const credentials = await this.getCredentials('podrelayApi');
	const response = (await this.helpers.httpRequestWithAuthentication.call(this, 'podrelayApi', {
		method,
		url: `${String(credentials.baseUrl).replace(/\/$/, '')}${path}`,
		body,
		json: true,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
	})) as { statusCode: number; body: IDataObject };
	return response;
}

export class PodrelayTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'podrelay Trigger',
		name: 'podrelayTrigger',
		icon: 'file:podrelay.svg',
		group: ['trigger'],
		version: 1,
		description: 'Starts the workflow when a podrelay job starts, completes, fails, is cancelled or times out',
		defaults: { name: 'podrelay Trigger' },
		inputs: [],
		outputs: ['main'],
		credentials: [{ name: 'podrelayApi', required: true }],
		// An empty 200 as soon as a delivery is verified: podrelay only needs the status.
		webhooks: [{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', responseData: 'noData', path: 'webhook' }],
		properties: [
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				default: ['job.completed'],
				options: (spec.events as string[]).map((event) => ({ name: event, value: event })),
			},
			{
				displayName: 'Surfaces',
				name: 'surfaces',
				type: 'multiOptions',
				default: [],
				description: 'Only jobs of these surfaces (none chosen: every surface)',
				options: (spec.surfaces as string[]).map((surface) => ({ name: surface, value: surface })),
			},
		],
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (!data.webhookId) return false;
				const answer = await podrelay.call(this, 'GET', `/v1/webhooks/${data.webhookId}`);
				if (answer.statusCode === 200 && answer.body.url === this.getNodeWebhookUrl('default')) return true;
				delete data.webhookId;
				delete data.webhookSecret;
				return false;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				const answer = await podrelay.call(this, 'POST', '/v1/webhooks', {
					url: this.getNodeWebhookUrl('default'),
					events: this.getNodeParameter('events') as string[],
					surfaces: this.getNodeParameter('surfaces', []) as string[],
					description: `n8n workflow ${this.getWorkflow().id ?? ''}`.trim(),
				});
				if (answer.statusCode !== 201) {
					const error = (answer.body.error ?? {}) as IDataObject;
					throw new NodeApiError(this.getNode(), answer.body as never, { message: String(error.message ?? 'podrelay refused the subscription') });
				}
				const data = this.getWorkflowStaticData('node');
				data.webhookId = answer.body.id;
				data.webhookSecret = answer.body.secret;
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (data.webhookId) {
					const answer = await podrelay.call(this, 'DELETE', `/v1/webhooks/${data.webhookId}`);
					if (answer.statusCode !== 200 && answer.statusCode !== 404) return false;
				}
				delete data.webhookId;
				delete data.webhookSecret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const request = this.getRequestObject() as unknown as {
			rawBody?: Buffer;
			readRawBody?: () => Promise<void>;
			headers: Record<string, string>;
		};
		const secret = String(this.getWorkflowStaticData('node').webhookSecret ?? '');
		// The signature covers the bytes podrelay sent: only the raw body can be checked (re-encoding the
		// parsed JSON changes non-ASCII text and number spellings). n8n reads it on request (body-parser.ts).
		if (!request.rawBody && request.readRawBody) await request.readRawBody();
		const raw = request.rawBody;
		if (!raw || !verifyDelivery(secret, raw, request.headers)) {
			this.getResponseObject().status(401).send('invalid signature');
			return { noWebhookResponse: true };
		}
		return { workflowData: [this.helpers.returnJsonArray(JSON.parse(raw.toString()) as IDataObject)] };
	}
}
